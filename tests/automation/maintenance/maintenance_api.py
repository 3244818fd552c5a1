"""Shared helpers of the maintenance API tests: synthetic fleets (known ground truth) through the real services."""

import io
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from automation.maintenance import services
from automation.maintenance.engine.synthetic import SyntheticFleet, generate_fleet
from automation.maintenance.importing import run_to_failure_import
from automation.maintenance.models import AssetType
from jobs.models import Job
from tests import builders

CYCLE_SECONDS = 3600
CHANNELS: list[dict[str, Any]] = [
    {"name": "vibration", "unit": "mm/s", "min_value": -5, "max_value": 10, "component": "spindle bearing"},
    {"name": "temperature", "unit": "degC", "min_value": -20, "max_value": 200},
    {"name": "pressure", "unit": "bar", "min_value": 0, "max_value": 20},
    {"name": "current", "unit": "A", "min_value": 0, "max_value": 100},
    {"name": "flow", "unit": "l/min", "min_value": 0, "max_value": 200},
    {"name": "humidity", "unit": "%", "min_value": 0, "max_value": 100},
]
CHANNEL_NAMES = [c["name"] for c in CHANNELS]


def url(org, path: str) -> str:
    return f"/api/v1/orgs/{org.slug}/maintenance/{path}"


def client_for(org):
    _, plaintext = builders.make_key(org)
    return builders.key_client(plaintext)


def make_asset_type(org, code: str = "pump") -> AssetType:
    return services.asset_type_create(
        organization=org, code=code, name="Centrifugal pump", channels=CHANNELS, cycle_seconds=CYCLE_SECONDS
    )


def aligned_start(cycles_back: int) -> datetime:
    """A cycle boundary far enough back that `cycles_back` cycles end before now."""
    moment = timezone.now() - timedelta(seconds=CYCLE_SECONDS * cycles_back)
    return datetime.fromtimestamp(math.floor(moment.timestamp() / CYCLE_SECONDS) * CYCLE_SECONDS, tz=UTC)


def ts_of(start: datetime, row: int) -> str:
    return (start + timedelta(seconds=CYCLE_SECONDS * row)).isoformat()


def run_to_failure_csv(histories) -> bytes:
    """`asset,cycle,<channels>` for histories [(code, frame)] whose last row is the failure."""
    out = io.StringIO()
    out.write(",".join(["asset", "cycle", *CHANNEL_NAMES]) + "\n")
    for code, frame in histories:
        for position, (_, row) in enumerate(frame.iterrows(), start=1):
            out.write(",".join([code, str(position), *(f"{row[c]:.6f}" for c in CHANNEL_NAMES)]) + "\n")
    return out.getvalue().encode()


def readings(frame, *, asset: str | None, start: datetime, rows: range) -> list[dict]:
    """Long-format readings of `rows` of a synthetic frame, row i stamped start + i cycles."""
    items = []
    for i in rows:
        record = frame.iloc[i]
        for name in CHANNEL_NAMES:
            item = {"channel": name, "ts": ts_of(start, i), "value": round(float(record[name]), 6)}
            if asset is not None:
                item["asset"] = asset
            items.append(item)
    return items


def small_fleet(**overrides) -> SyntheticFleet:
    """Short lives, so training in-process takes a second or two."""
    kwargs = {
        "n_assets": 4,
        "seed": 5,
        "min_life": 60,
        "max_life": 70,
        "min_degradation": 20,
        "max_degradation": 30,
        **overrides,
    }
    return generate_fleet(**kwargs)


def run_job_here(job: Job, handler) -> Job:
    """Run a job's handler in this process with the job services' claim and finish (what the runner does, without
    its heartbeat thread and connection recycling, which a test's transaction cannot have)."""
    from jobs import services as jobs
    from jobs.runner import JobContext, JobFailure

    claimed = jobs.job_claim(job_id=str(job.pk), organization_id=str(job.organization_id), worker="test")
    assert claimed is not None
    try:
        result = handler(JobContext(claimed))
    except JobFailure as failure:
        jobs.job_finish(
            job=claimed,
            status=Job.Status.FAILED,
            result=failure.result,
            error_code=failure.code,
            error_message=str(failure),
        )
    else:
        jobs.job_finish(job=claimed, status=Job.Status.SUCCEEDED, result=result)
    job.refresh_from_db()
    return job


def trained_world(org) -> dict:
    """An asset type with a trained model, three failed assets and one live asset scored near its failure (so it
    has health, a recommendation and a work order), built through the services and the jobs' own handlers."""
    from django.test import override_settings

    from automation.maintenance.engine.synthetic import AnomalySpec
    from automation.maintenance.modeling import score_execute, train_execute
    from automation.maintenance.telemetry import readings_from_json, telemetry_ingest

    asset_type = make_asset_type(org)
    fleet = small_fleet(
        anomalies=[AnomalySpec(asset_index=3, channel="humidity", start=20, duration=8, magnitude=12.0)]
    )
    start = aligned_start(200)
    histories = [(f"hist-{i}", frame) for i, (_, frame) in enumerate(fleet.histories[:3], start=1)]
    run_to_failure_import(
        organization=org, asset_type=asset_type, content=run_to_failure_csv(histories), file_format="csv", start=start
    )
    live = services.asset_create(organization=org, code="live-1", asset_type=asset_type, site="Hall 1")
    frame = fleet.histories[3][1]
    document = {"readings": readings(frame, asset="live-1", start=start, rows=range(len(frame) - 2))}
    telemetry_ingest(organization=org, readings=readings_from_json(document))
    with override_settings(MAINTENANCE_WEBHOOK_ALLOW_PRIVATE_HOSTS=True):
        webhook, _ = services.webhook_endpoint_create(organization=org, url="http://127.0.0.1:9/hooks")
    ingestion_key, _ = services.ingestion_key_create(organization=org, name="gateway PLC", asset=live)
    inspection = services.asset_event_create(
        organization=org, asset=live, kind="inspection", occurred_at=start + timedelta(hours=5), component="bearing"
    )
    actor = builders.owner_actor(org)
    train = run_job_here(services.training_start(organization=org, asset_type=asset_type, actor=actor), train_execute)
    assert train.status == "succeeded", (train.error_code, train.error_message)
    score = run_job_here(services.scoring_start(organization=org, asset_type=asset_type, actor=actor), score_execute)
    assert score.status == "succeeded", (score.error_code, score.error_message)
    return {
        "asset_type": asset_type,
        "live": live,
        "train_job": train,
        "score_job": score,
        "fleet": fleet,
        "start": start,
        "webhook": webhook,
        "ingestion_key": ingestion_key,
        "inspection": inspection,
    }


def maintenance_objects(org) -> list:
    """One object of every maintenance model that has a route (for the isolation sweep)."""
    from automation.maintenance import models

    world = trained_world(org)
    objects = [world["asset_type"], world["live"], world["inspection"], world["webhook"], world["ingestion_key"]]
    for model in (
        models.AssetEvent,
        models.TrainedModel,
        models.AssetHealth,
        models.Anomaly,
        models.Recommendation,
        models.WorkOrder,
        models.WebhookDelivery,
    ):
        found = model.objects.filter(organization=org).first()
        assert found is not None, f"the maintenance world has no {model.__name__}"
        objects.append(found)
    return objects + vibration_objects(org, world["live"])


def vibration_objects(org, asset) -> list:
    """Kinematics, an analysed capture of an outer-race fault and its diagnosis on `asset`."""
    import numpy as np

    from automation.maintenance.diagnostics import vibration_analyse_execute
    from automation.maintenance.vibration import capture_create, kinematics_set
    from tests.automation.maintenance.vibration_signals import FS, KINEMATICS_DICT, SHAFT_HZ, bearing_fault

    kinematics = kinematics_set(asset=asset, data=KINEMATICS_DICT)
    capture = capture_create(
        organization=org,
        asset=asset,
        sensor="DE",
        content=np.asarray(bearing_fault("outer_race", amplitude=4.0), dtype="<f4").tobytes(),
        fmt="float32",
        sample_rate=FS,
        shaft_rpm=SHAFT_HZ * 60,
    )
    assert capture.job is not None
    run_job_here(capture.job, vibration_analyse_execute)
    return [kinematics, capture, *capture.diagnoses.all()]
