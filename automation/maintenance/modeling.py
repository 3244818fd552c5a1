"""The maintenance jobs inside a worker: train an RUL model per asset type, score assets.

Training reads every run-to-failure history of the type (or of the named assets), trains the engine's RUL model
(out-of-fold metrics grouped by asset come with it) and a healthy baseline for anomaly detection, fitted on the
early part of every history, and stores both as the type's current model.

Scoring reads each asset's current life, predicts RUL with its band and drivers, finds anomalies per channel
and across channels, and records an AssetHealth row; a result worth acting on becomes a Recommendation and an
open WorkOrder (unless one for the same action and component is still open), whose explanation and webhooks
are sent after the commit. Each job run is one billable model run.
"""

import logging
from datetime import UTC, datetime, timedelta

import pandas as pd
from django.db import transaction
from django.utils import timezone

from billing.usage import usage_record
from jobs.runner import JobContext, JobFailure

from . import selectors
from .conf import METER, RECOMMEND_FROM_PRIORITY
from .engine import (
    HealthyBaseline,
    RulModel,
    detect_anomalies,
    fit_healthy_baseline,
    health_score,
    recommend,
    train_rul_model,
)
from .models import Anomaly, Asset, AssetHealth, AssetType, Channel, Recommendation, TrainedModel, WorkOrder
from .notify import recommendation_created

logger = logging.getLogger(__name__)

HEALTHY_SHARE = 0.25  # of each run-to-failure history, fitted as healthy for anomaly detection
MIN_HEALTHY_ROWS = 10
MIN_SCORING_ROWS = 10


def _bill(ctx: JobContext, kind: str, attributes: dict) -> None:
    try:
        usage_record(
            organization_id=ctx.organization_id,
            meter=METER,
            quantity=1,
            idempotency_key=f"maintenance:{ctx.job.id}",
            attributes={"kind": kind, **attributes},
        )
    except Exception:
        # The model is worth more than failing the job over a usage write; the log and the event say so.
        logger.exception("Recording the model run of job %s failed", ctx.job.id)
        ctx.event("Could not record this model run for billing.", level="warning")


def _asset_type(ctx: JobContext) -> tuple[AssetType, list[Channel]]:
    asset_type = AssetType.objects.filter(pk=ctx.params["asset_type_id"], organization_id=ctx.organization_id).first()
    if asset_type is None:
        raise JobFailure("The asset type no longer exists.", code="not_found")
    return asset_type, list(asset_type.channels.all())


def _baseline_frames(model: RulModel, frames: list[pd.DataFrame], sensors: list[str]) -> tuple[list, str]:
    """Anomalies are judged on raw values when nothing moves the operating point, else on the model's
    normalised channels (per-regime z-scores compensated for the settings), so a regime change is no alarm."""
    if model.setting_columns:
        return [model.builder.normalise(frame) for frame in frames], "normalised"
    return [frame.loc[:, sensors] for frame in frames], "raw"


# --- training -------------------------------------------------------------------------------------------------------


def train_execute(ctx: JobContext) -> dict:
    asset_type, channels = _asset_type(ctx)
    settings_ = [c.name for c in channels if c.is_setting]
    sensors = [c.name for c in channels if not c.is_setting]
    histories = selectors.run_to_failure_histories(
        asset_type=asset_type, channels=channels, asset_codes=ctx.params.get("assets")
    )
    if len(histories) < 2:
        raise JobFailure(
            f"Training needs run-to-failure histories of at least 2 lives; {asset_type.code} has "
            f"{len(histories)}. Record failures (or import run-to-failure data) first.",
            code="not_enough_data",
        )
    rows = sum(len(frame) for _, frame in histories)
    ctx.progress(
        10,
        f"Training on {len(histories)} run-to-failure histories ({rows} cycles of "
        f"{asset_type.cycle_seconds} s, {len(sensors)} sensors, {len(settings_)} settings).",
    )
    ctx.raise_if_cancelled()
    try:
        model = train_rul_model(
            histories=histories, cap=asset_type.rul_cap, setting_columns=settings_, channels=sensors
        )
    except ValueError as exc:
        raise JobFailure(f"The histories cannot be trained on: {exc}", code="invalid_data") from exc
    ctx.progress(80, "Fitting the healthy baseline for anomaly detection.")
    frames = [frame for _, frame in histories]
    healthy = [frame.iloc[: max(MIN_HEALTHY_ROWS, int(len(frame) * HEALTHY_SHARE))] for frame in frames]
    baseline_input, space = _baseline_frames(model, healthy, list(model.channels))
    baseline = fit_healthy_baseline(frames=baseline_input, channels=list(model.channels))
    summary = model.summary
    metrics = {
        "cv_rmse": round(summary.oof_rmse, 3),
        "band_coverage": round(summary.band_coverage, 3),
        "histories": summary.n_assets,
        "rows": summary.n_rows,
        "training_seconds": round(summary.seconds, 2),
        "cap": model.cap,
        "channel_importance": {k: round(v, 3) for k, v in model.channel_importance.items()},
        "dropped_channels": list(model.builder.dropped_channels),
        "baseline_space": space,
        "library_versions": dict(summary.library_versions),
    }
    ctx.metrics(
        f"Out-of-fold RMSE {summary.oof_rmse:.2f} cycles (folds by asset), band coverage "
        f"{100 * summary.band_coverage:.0f} %.",
        **{k: metrics[k] for k in ("cv_rmse", "band_coverage")},
    )
    with transaction.atomic():
        TrainedModel.objects.filter(asset_type=asset_type, is_current=True).update(is_current=False)
        trained = TrainedModel.objects.create(
            organization_id=ctx.organization_id,
            asset_type=asset_type,
            job=ctx.job,
            artefact=model.to_bytes(),
            baseline=baseline.to_bytes(),
            cap=model.cap,
            channels=list(model.channels),
            setting_channels=settings_,
            metrics=metrics,
            training_assets=sorted({label.split("@")[0] for label, _ in histories}),
        )
    _bill(ctx, "train", {"asset_type": asset_type.code, "model_id": str(trained.pk)})
    return {
        "model_id": str(trained.pk),
        "asset_type": asset_type.code,
        **{k: v for k, v in metrics.items() if k != "library_versions"},
    }


# --- scoring --------------------------------------------------------------------------------------------------------


def _moment(label) -> datetime:
    return pd.Timestamp(label).to_pydatetime().astimezone(UTC)


def _record_anomalies(ctx: JobContext, asset: Asset, found, cycle: timedelta) -> list[dict]:
    ongoing = []
    for anomaly in found:
        starts_at, ends_at = _moment(anomaly.start), _moment(anomaly.end) + cycle
        Anomaly.objects.update_or_create(
            asset=asset,
            channel=anomaly.channel,
            starts_at=starts_at,
            defaults={
                "organization_id": ctx.organization_id,
                "ends_at": ends_at,
                "score": round(anomaly.score, 3),
                "ongoing": anomaly.ongoing,
                "job": ctx.job,
            },
        )
        if anomaly.ongoing:
            ongoing.append(
                {"channel": anomaly.channel, "starts_at": starts_at.isoformat(), "score": round(anomaly.score, 2)}
            )
    # Anomalies that an earlier scoring saw as ongoing and this one no longer finds have ended.
    Anomaly.objects.filter(asset=asset, ongoing=True).exclude(
        starts_at__in=[_moment(a.start) for a in found if a.ongoing]
    ).update(ongoing=False)
    return ongoing


def _components(channels: list[Channel]) -> dict[str, str]:
    return {c.name: c.component for c in channels if c.component}


def _recommendation_worth_recording(asset: Asset, advice) -> bool:
    if advice.priority not in RECOMMEND_FROM_PRIORITY:
        return False
    # One open work order per asset, action and component: scoring every hour must not repeat itself.
    return not WorkOrder.objects.filter(
        asset=asset,
        status__in=[WorkOrder.Status.OPEN, WorkOrder.Status.ACKNOWLEDGED],
        recommendation__action=advice.action,
        recommendation__component=advice.component,
    ).exists()


def score_execute(ctx: JobContext) -> dict:
    asset_type, channels = _asset_type(ctx)
    trained = selectors.current_model(asset_type=asset_type)
    if trained is None:
        raise JobFailure(f"{asset_type.code} has no trained model; train one first.", code="no_model")
    model = RulModel.from_bytes(bytes(trained.artefact))
    baseline = HealthyBaseline.from_bytes(bytes(trained.baseline)) if trained.baseline else None
    used = [c for c in channels if c.name in set(trained.channels) | set(trained.setting_channels)]
    cycle = timedelta(seconds=asset_type.cycle_seconds)
    assets = list(Asset.objects.filter(organization_id=ctx.organization_id, asset_type=asset_type).order_by("code"))
    frames: dict[Asset, pd.DataFrame] = {}
    for asset in assets:
        frame = selectors.current_life_frame(asset=asset, channels=used, cycle_seconds=asset_type.cycle_seconds)
        if len(frame) >= MIN_SCORING_ROWS:
            frames[asset] = frame
    ctx.progress(
        20,
        f"Scoring {len(frames)} of {len(assets)} {asset_type.code} assets "
        f"({len(assets) - len(frames)} without {MIN_SCORING_ROWS} cycles of telemetry yet).",
    )
    predictions = model.predict_many({asset.pk: frame for asset, frame in frames.items()}) if frames else {}
    now = timezone.now()
    created: list[Recommendation] = []
    scored = []
    for asset, frame in frames.items():
        ctx.raise_if_cancelled()
        prediction = predictions[asset.pk]
        found = []
        if baseline is not None:
            judged = (
                model.builder.normalise(frame)
                if trained.metrics.get("baseline_space") == "normalised"
                else frame.loc[:, list(baseline.channels)]
            )
            found = detect_anomalies(frame=judged, baseline=baseline)
        as_of = _moment(frame.index[-1]) + cycle
        with transaction.atomic():
            ongoing = _record_anomalies(ctx, asset, found, cycle)
            ongoing_found = [a for a in found if a.ongoing]
            health = AssetHealth.objects.create(
                organization_id=ctx.organization_id,
                asset=asset,
                model=trained,
                job=ctx.job,
                as_of=as_of,
                health_score=health_score(prediction=prediction, anomalies=ongoing_found),
                rul_cycles=round(prediction.rul, 2),
                rul_low=round(prediction.low, 2),
                rul_high=round(prediction.high, 2),
                rul_at_cap=prediction.at_cap,
                predicted_failure_at=None if prediction.at_cap else as_of + cycle * prediction.rul,
                drivers=[{"channel": d.channel, "effect_cycles": round(d.effect, 2)} for d in prediction.drivers],
                ongoing_anomalies=ongoing,
            )
            advice = recommend(
                prediction=prediction,
                now=as_of,
                cycle_duration=cycle,
                anomalies=ongoing_found,
                components=_components(channels),
            )
            if _recommendation_worth_recording(asset, advice):
                recommendation = Recommendation.objects.create(
                    organization_id=ctx.organization_id,
                    asset=asset,
                    health=health,
                    action=advice.action,
                    component=advice.component,
                    channel=advice.channel or "",
                    due_by=advice.due_by,
                    priority=advice.priority,
                    conservative_rul=round(advice.conservative_rul, 2),
                    reason=advice.reason,
                    explanation_model=asset_type.explainer_model,
                )
                WorkOrder.objects.create(
                    organization_id=ctx.organization_id, asset=asset, recommendation=recommendation
                )
                created.append(recommendation)
        scored.append(
            {"asset": asset.code, "health": health.health_score, "rul": health.rul_cycles, "anomalies": len(found)}
        )
    for recommendation in created:
        recommendation_created(recommendation=recommendation)
    _bill(ctx, "score", {"asset_type": asset_type.code, "assets": len(scored)})
    return {
        "asset_type": asset_type.code,
        "model_id": str(trained.pk),
        "scored": len(scored),
        "skipped": len(assets) - len(scored),
        "recommendations": [str(r.pk) for r in created],
        "assets": scored[:200],
        "scored_at": now.isoformat(),
    }
