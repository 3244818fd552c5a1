"""Vibration through the API: kinematics, capture upload in every format, all-or-nothing refusals, the analysis
job (in-process here, through a real worker in the slow test), diagnoses, indicator channels, recommendations,
webhooks, metering, and tenant isolation. Signals are synthesised with known faults."""

import io
import itertools
import struct
import wave

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from automation.maintenance.diagnostics import vibration_analyse_execute
from automation.maintenance.models import (
    Recommendation,
    Telemetry,
    VibrationCapture,
    VibrationDiagnosis,
    WebhookDelivery,
    WorkOrder,
)
from automation.maintenance.vibration import captures_expire
from billing.periods import period_containing
from billing.usage import usage_observed
from jobs.models import Job
from tests import builders
from tests.automation.maintenance.maintenance_api import client_for, make_asset_type, run_job_here, url
from tests.automation.maintenance.vibration_signals import FS, KINEMATICS_DICT, SHAFT_HZ, bearing_fault
from tests.workers import running_worker, wait_until

pytestmark = pytest.mark.django_db


def _setup(org):
    make_asset_type(org)
    client = client_for(org)
    assert client.post(url(org, "assets"), {"code": "M-1", "asset_type": "pump"}, format="json").status_code == 201
    asset_id = client.get(url(org, "assets")).json()["results"][0]["id"]
    response = client.put(url(org, f"assets/{asset_id}/kinematics"), KINEMATICS_DICT, format="json")
    assert response.status_code == 200, response.json()
    return client, asset_id


def _f32(x: np.ndarray) -> bytes:
    return np.asarray(x, dtype="<f4").tobytes()


def _upload(client, org, content: bytes, name: str, **fields):
    data = {"asset": "M-1", "sensor": "DE", "sample_rate": FS, "shaft_rpm": SHAFT_HZ * 60, **fields}
    data["file"] = io.BytesIO(content)
    data["file"].name = name
    return client.post(url(org, "captures"), data, format="multipart")


def _analyse(capture_id: str) -> VibrationCapture:
    capture = VibrationCapture.objects.get(pk=capture_id)
    assert capture.job is not None
    assert run_job_here(capture.job, vibration_analyse_execute).status == Job.Status.SUCCEEDED
    capture.refresh_from_db()
    return capture


def _stored_files(org) -> list[str]:
    try:
        _, files = default_storage.listdir(f"vibration/{org.pk}")
        dirs, _ = default_storage.listdir(f"vibration/{org.pk}")
    except FileNotFoundError:
        return []
    return [f for d in dirs for f in default_storage.listdir(f"vibration/{org.pk}/{d}")[1]] + files


def test_kinematics_are_checked_and_add_indicator_channels(org):
    client, asset_id = _setup(org)
    body = client.get(url(org, f"assets/{asset_id}/kinematics")).json()
    assert body["bearings"][0]["model"] == "6205"
    channels = {c["name"] for c in client.get(url(org, "asset-types")).json()["results"][0]["channels"]}
    assert {"DE.velocity_rms", "DE.kurtosis", "DE.bpfo_snr", "DE.order_1x"} <= channels
    bad = client.put(
        url(org, f"assets/{asset_id}/kinematics"),
        {"shafts": [{"name": "s"}], "bearings": [{"name": "b", "shaft": "s", "model": "nope"}]},
        format="json",
    )
    assert bad.status_code == 400
    assert "bearings[0].model" in bad.json()["error"]["fields"]
    catalogue = client.get(url(org, "bearings")).json()
    [row] = [r for r in catalogue if r["model"] == "6205"]
    assert row["bpfo"] == pytest.approx(3.5848, abs=2e-3)


def test_an_outer_race_fault_is_named_stored_trended_recommended_and_metered(org, settings):
    settings.MAINTENANCE_WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    client, _ = _setup(org)
    endpoint = client.post(
        url(org, "webhooks"), {"url": "http://127.0.0.1:9/hook", "events": ["diagnosis.created"]}, format="json"
    )
    assert endpoint.status_code == 201, endpoint.json()
    response = _upload(client, org, _f32(bearing_fault("outer_race", amplitude=4.0, seed=7)), "c.f32")
    assert response.status_code == 201, response.json()
    capture = _analyse(response.json()["id"])
    assert capture.status == "analysed"
    # Stored compactly through the storage API, never a row per sample.
    assert capture.waveform.name.endswith(".npz") and default_storage.exists(capture.waveform.name)
    assert capture.size_bytes < 12_000 * 4 * 1.1
    [diagnosis] = client.get(url(org, "diagnoses") + "?asset=M-1").json()["results"]
    assert diagnosis["label"] == "drive-end bearing 6205, outer race"
    assert diagnosis["evidence"][0]["hz"] == pytest.approx(3.5848 * SHAFT_HZ, rel=0.01)
    assert diagnosis["severity_level"] in ("moderate", "high", "critical")
    detail = client.get(url(org, f"captures/{capture.pk}")).json()
    assert detail["indicators"]["axes"]["radial"]["kurtosis"] > 3
    assert any(f["kind"] == "bpfo" for f in detail["plots"]["frequencies"])
    assert len(detail["plots"]["envelope"]["hz"]) == len(detail["plots"]["envelope"]["amplitude"]) > 50
    # Indicators are telemetry of the asset's channels: the existing models trend them.
    names = set(Telemetry.objects.filter(asset=capture.asset).values_list("channel__name", flat=True))
    assert {"DE.velocity_rms", "DE.kurtosis", "DE.bpfo_snr"} <= names
    recommendation = Recommendation.objects.get(asset=capture.asset)
    assert recommendation.component == "drive-end bearing 6205, outer race"
    assert WorkOrder.objects.get(recommendation=recommendation).status == "open"
    assert WebhookDelivery.objects.filter(event="diagnosis.created").count() == 1
    assert usage_observed(organization_id=org.pk, period=period_containing(timezone.now()))["maintenance.captures"] == 1
    # A second capture of the same fault does not open a second work order.
    again = _upload(client, org, _f32(bearing_fault("outer_race", amplitude=4.0, seed=8)), "c.f32")
    _analyse(again.json()["id"])
    assert VibrationDiagnosis.objects.count() == 2 and WorkOrder.objects.count() == 1


def test_a_healthy_capture_gets_no_diagnosis(org):
    client, _ = _setup(org)
    response = _upload(client, org, _f32(bearing_fault(None, seed=3)), "c.f32")
    capture = _analyse(response.json()["id"])
    assert capture.status == "analysed" and capture.indicators["iso_zone"] == "A"
    assert VibrationDiagnosis.objects.count() == 0 and Recommendation.objects.count() == 0


def test_every_format_is_read(org):
    client, _ = _setup(org)
    x = bearing_fault("inner_race", amplitude=3.0, seed=2).astype(np.float32)
    npy = io.BytesIO()
    np.save(npy, x)
    wav = io.BytesIO()
    with wave.open(wav, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(int(FS))
        handle.writeframes(struct.pack(f"<{len(x)}h", *np.round(x / 10.0 * 32767).astype(int)))
    csv = ("de_g\n" + "\n".join(f"{v:.6f}" for v in x)).encode()
    for content, name, extra in (
        (npy.getvalue(), "c.npy", {}),
        (wav.getvalue(), "c.wav", {"scale": 10.0}),
        (csv, "c.csv", {}),
    ):
        response = _upload(client, org, content, name, **extra)
        assert response.status_code == 201, (name, response.json())
        capture = _analyse(response.json()["id"])
        assert capture.samples == len(x)
        labels = [d.label for d in capture.diagnoses.all()]
        assert labels and labels[0] == "drive-end bearing 6205, inner race", (name, labels)


@pytest.mark.parametrize(
    ("content", "name", "fields", "where", "says"),
    [
        (_f32(np.zeros(6000)), "c.f32", {"sample_rate": 500}, "sample_rate", "1 to 100 kHz"),
        (_f32(np.zeros(2400)), "c.f32", {}, "file", "0.5 to 60 s"),
        (_f32(np.zeros(12001))[:-2], "c.f32", {}, "file", "whole number"),
        (_f32(np.r_[np.zeros(8000), np.nan, np.zeros(3999)]), "c.f32", {}, "file", "not finite"),
        (_f32(np.zeros(12000)), "c.f32", {"sensor": "NDE"}, "sensor", "no sensor 'NDE'"),
        (b"g\n0.1\n0.2\nabc\n" + b"0.0\n" * 12000, "c.csv", {}, "line 4", "not a number"),
        (b"0.1\n" * 6000 + b"inf\n" + b"0.1\n" * 6000, "c.csv", {}, "line 6001", "not finite"),
    ],
)
def test_bad_captures_are_refused_and_nothing_is_stored(org, content, name, fields, where, says):
    client, _ = _setup(org)
    response = _upload(client, org, content, name, **fields)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "nothing was stored" in error["message"]
    assert says in " ".join(error["fields"][where])
    assert (
        VibrationCapture.objects.count() == 0 and Job.objects.filter(kind="maintenance.vibration_analyse").count() == 0
    )
    assert _stored_files(org) == []


def test_another_tenant_can_never_read_captures_or_diagnoses(org):
    client, _ = _setup(org)
    capture = _analyse(_upload(client, org, _f32(bearing_fault("outer_race", amplitude=4.0)), "c.f32").json()["id"])
    diagnosis = capture.diagnoses.get()
    other = builders.make_org(slug="other-plant")
    stranger = client_for(other)
    for path in (f"captures/{capture.pk}", f"diagnoses/{diagnosis.pk}"):
        assert client.get(url(org, path)).status_code == 200
        assert stranger.get(url(other, path)).status_code == 404
        assert stranger.get(url(org, path)).status_code in (403, 404)
    assert stranger.get(url(other, "captures")).json()["results"] == []
    assert stranger.delete(url(other, f"captures/{capture.pk}")).status_code == 404
    assert VibrationCapture.objects.filter(pk=capture.pk).exists()


def test_retention_removes_the_waveform_too(org):
    client, _ = _setup(org)
    capture = VibrationCapture.objects.get(pk=_upload(client, org, _f32(np.zeros(12000)), "c.f32").json()["id"])
    name = capture.waveform.name
    assert captures_expire(organization=org, older_than=timezone.now() + timezone.timedelta(seconds=1)) == 1
    assert not default_storage.exists(name) and not VibrationCapture.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_analysis_runs_on_the_maintenance_queue(org, tmp_path):
    client, _ = _setup(org)
    with running_worker(queues="maintenance", name="vibration", log_path=tmp_path / "worker.log"):
        response = _upload(client, org, _f32(bearing_fault("inner_race", amplitude=4.0, seed=5)), "c.f32")
        assert response.status_code == 201
        capture_id = response.json()["id"]
        wait_until(
            lambda: VibrationCapture.objects.get(pk=capture_id).status != "received", timeout=120, what="analysis"
        )
    capture = VibrationCapture.objects.get(pk=capture_id)
    assert capture.status == "analysed", capture.error
    assert capture.job.status == Job.Status.SUCCEEDED
    assert capture.diagnoses.order_by("-confidence")[0].label == "drive-end bearing 6205, inner race"


# --- batches: several captures in one request, one analysis job --------------------------------------------------


def _upload_batch(client, org, files: list[tuple[bytes, str]], **fields):
    data = {"asset": "M-1", "sensor": "DE", "sample_rate": FS, "shaft_rpm": SHAFT_HZ * 60, **fields}
    data["file"] = []
    for content, name in files:
        upload = io.BytesIO(content)
        upload.name = name
        data["file"].append(upload)
    return client.post(url(org, "captures/batch"), data, format="multipart")


def test_a_batch_is_stored_and_analysed_by_one_job_and_metered_once(org):
    from billing.ledger import ledger_flush
    from billing.models import UsageEvent

    client, _ = _setup(org)
    signals = [
        bearing_fault("outer_race", amplitude=4.0, seed=11),
        bearing_fault(None, seed=12),
        bearing_fault("outer_race", amplitude=4.0, seed=13),
        bearing_fault("inner_race", amplitude=4.0, seed=14),
    ]
    response = _upload_batch(
        client,
        org,
        [(_f32(x), f"c{i}.f32") for i, x in enumerate(signals)],
        label=["outer_race", "normal", "outer_race", "inner_race"],
        captured_at="2026-03-01T10:00:00Z",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["count"] == 4 and [c["label"] for c in body["captures"]] == [
        "outer_race",
        "normal",
        "outer_race",
        "inner_race",
    ]
    # One job for the batch; the captures follow each other from the given start.
    assert Job.objects.filter(kind="maintenance.vibration_analyse").count() == 1
    captures = sorted(VibrationCapture.objects.all(), key=lambda c: c.captured_at)
    assert {str(c.job_id) for c in captures} == {body["job"]}
    assert [c.captured_at.isoformat() for c in captures] == [f"2026-03-01T10:00:0{i}+00:00" for i in range(4)] and [
        str(c.pk) for c in captures
    ] == [c["id"] for c in body["captures"]]
    assert run_job_here(Job.objects.get(pk=body["job"]), vibration_analyse_execute).status == Job.Status.SUCCEEDED
    for capture in captures:
        capture.refresh_from_db()
        assert capture.status == "analysed" and capture.plots["frequencies"]
    names = [[d.label for d in c.diagnoses.order_by("-confidence")] for c in captures]
    assert names[0][:1] == names[2][:1] == ["drive-end bearing 6205, outer race"]
    assert names[1] == [] and names[3][:1] == ["drive-end bearing 6205, inner race"]
    # Indicators of every capture are telemetry at its own time; one work order for the fault seen twice.
    velocity = Telemetry.objects.filter(channel__name="DE.velocity_rms").values_list("ts", flat=True)
    assert sorted(velocity) == [c.captured_at for c in captures]
    assert WorkOrder.objects.filter(recommendation__component="drive-end bearing 6205, outer race").count() == 1
    # Metered once for the batch, quantity = the captures analysed.
    assert usage_observed(organization_id=org.pk, period=period_containing(timezone.now()))["maintenance.captures"] == 4
    ledger_flush()
    assert list(
        UsageEvent.objects.filter(organization_id=org.pk, meter="maintenance.captures").values_list(
            "quantity", flat=True
        )
    ) == [4]


def test_a_batch_can_be_one_npy_stack(org):
    client, _ = _setup(org)
    stack = np.stack([bearing_fault("inner_race", amplitude=3.0, seed=s) for s in (21, 22, 23)]).astype(np.float32)
    npy = io.BytesIO()
    np.save(npy, stack)
    response = _upload_batch(client, org, [(npy.getvalue(), "batch.npy")], shaft_rpm=[1790, 1795, 1797])
    assert response.status_code == 201, response.json()
    assert [c["shaft_rpm"] for c in response.json()["captures"]] == [1790, 1795, 1797]
    ends = sorted(VibrationCapture.objects.values_list("captured_at", flat=True))
    assert ends[-1] <= timezone.now() and [(b - a).total_seconds() for a, b in itertools.pairwise(ends)] == [1.0, 1.0]
    job = Job.objects.get(pk=response.json()["job"])
    assert run_job_here(job, vibration_analyse_execute).status == Job.Status.SUCCEEDED
    assert set(VibrationCapture.objects.values_list("status", flat=True)) == {"analysed"}
    job.refresh_from_db()
    assert len(job.result["captures"]) == 3 and job.result["failed"] == {}


@pytest.mark.parametrize(
    ("bad", "fields", "where", "says"),
    [
        (np.r_[np.zeros(7000), np.inf, np.zeros(4999)], {}, "captures[2].file", "not finite"),
        (None, {"sample_rate": [FS, 500.0, FS]}, "captures[1].sample_rate", "1 to 100 kHz"),
        (None, {"sensor": ["DE", "DE", "NDE"]}, "captures[2].sensor", "no sensor 'NDE'"),
        (np.zeros(2000), {}, "captures[2].file", "0.5 to 60 s"),
        (None, {"label": ["normal", "rusty", "normal"]}, "captures[1].label", "one of"),
        (None, {"shaft_rpm": [1797, 1797]}, "shaft_rpm", "once per capture"),
    ],
)
def test_a_batch_with_one_bad_capture_is_refused_whole(org, bad, fields, where, says):
    client, _ = _setup(org)
    signals = [bearing_fault("outer_race", amplitude=4.0, seed=s) for s in (31, 32)]
    signals.append(bad if bad is not None else bearing_fault(None, seed=33))
    response = _upload_batch(client, org, [(_f32(x), f"c{i}.f32") for i, x in enumerate(signals)], **fields)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["message"] == "The batch was refused; nothing was stored."
    assert list(error["fields"]) == [where] and says in " ".join(error["fields"][where])
    assert not VibrationCapture.objects.exists()
    assert not Job.objects.filter(kind="maintenance.vibration_analyse").exists()
    assert _stored_files(org) == []


def test_another_tenant_cannot_upload_a_batch_to_an_asset_it_does_not_own(org):
    _setup(org)
    other = builders.make_org(slug="other-plant")
    stranger = client_for(other)
    files = [(_f32(bearing_fault(None, seed=41)), "c.f32")]
    assert _upload_batch(stranger, org, files).status_code in (403, 404)
    refused = _upload_batch(stranger, other, files)  # B's own URL: A's asset code does not exist there
    assert refused.status_code == 400 and "asset" in refused.json()["error"]["fields"]
    assert not VibrationCapture.objects.exists() and _stored_files(org) == [] and _stored_files(other) == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_batch_is_analysed_by_one_job_on_the_maintenance_queue(org, tmp_path):
    client, _ = _setup(org)
    signals = [bearing_fault("inner_race", amplitude=4.0, seed=s) for s in (51, 52, 53)]
    with running_worker(queues="maintenance", name="vibration-batch", log_path=tmp_path / "worker.log"):
        response = _upload_batch(client, org, [(_f32(x), f"c{i}.f32") for i, x in enumerate(signals)])
        assert response.status_code == 201, response.json()
        job_id = response.json()["job"]
        wait_until(lambda: Job.objects.get(pk=job_id).is_finished, timeout=120, what="the batch's analysis job")
    job = Job.objects.get(pk=job_id)
    assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert job.attempts == 1 and len(job.result["captures"]) == 3 and job.result["failed"] == {}
    captures = VibrationCapture.objects.filter(job_id=job_id)
    assert captures.count() == 3 and set(captures.values_list("status", flat=True)) == {"analysed"}
    for capture in captures:
        assert capture.diagnoses.order_by("-confidence")[0].label == "drive-end bearing 6205, inner race"
    assert usage_observed(organization_id=org.pk, period=period_containing(timezone.now()))["maintenance.captures"] == 3


def test_a_learned_classifier_trained_on_a_labelled_batch_is_applied_to_later_captures(org):
    from automation.maintenance.diagnostics import vibration_train_execute
    from automation.maintenance.models import VibrationModel

    client, _ = _setup(org)
    labels = ["outer_race"] * 4 + ["normal"] * 4
    signals = [bearing_fault("outer_race", amplitude=4.0, seed=60 + i) for i in range(4)]
    signals += [bearing_fault(None, seed=70 + i) for i in range(4)]
    response = _upload_batch(client, org, [(_f32(x), f"c{i}.f32") for i, x in enumerate(signals)], label=labels)
    assert response.status_code == 201, response.json()
    assert run_job_here(Job.objects.get(pk=response.json()["job"]), vibration_analyse_execute).status == "succeeded"
    train = client.post(url(org, "captures/train"), {"asset_type": "pump"}, format="json")
    assert train.status_code == 202, train.json()
    assert run_job_here(Job.objects.get(pk=train.json()["job"]), vibration_train_execute).status == "succeeded"
    model = VibrationModel.objects.get(is_current=True)
    later = _upload_batch(
        client,
        org,
        [
            (_f32(bearing_fault("outer_race", amplitude=4.0, seed=80)), "a.f32"),
            (_f32(bearing_fault(None, seed=81)), "b.f32"),
        ],
    )
    assert run_job_here(Job.objects.get(pk=later.json()["job"]), vibration_analyse_execute).status == "succeeded"
    learned = [VibrationCapture.objects.get(pk=c["id"]).indicators["learned"] for c in later.json()["captures"]]
    assert [item["model"] for item in learned] == [str(model.pk)] * 2
    assert [item["label"] for item in learned] == ["outer_race", "normal"]
