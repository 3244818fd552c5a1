"""The `maintenance.vibration_analyse` job: one capture through the vibration engine, its results stored.

Per capture: indicators per axis; diagnoses (physics; plus the learned classifier of the asset type when one has
been trained on the tenant's labelled captures); plot data for the portal (downsampled spectra, the fault
frequencies); the indicators written as telemetry of the asset's indicator channels (so anomaly detection, RUL,
recommendations and work orders use them); from moderate severity a recommendation with a work order (not
repeated while one is open for the same component), explained and sent to webhooks as any recommendation is;
a `diagnosis.created` webhook per diagnosis; one `maintenance.captures` usage event.
"""

import json
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from celery import current_app
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from billing.usage import usage_record
from jobs.runner import JobContext, JobFailure

from .conf import CAPTURES_METER, LEARNED_MIN_PROBABILITY, METER, RECOMMEND_FROM_PRIORITY
from .engine.vibration import FAULT_LABELS, Analysis, analyse_capture
from .engine.vibration_learning import VibrationClassifier, train_vibration_classifier
from .models import (
    AssetType,
    Channel,
    Recommendation,
    VibrationCapture,
    VibrationDiagnosis,
    VibrationModel,
    WebhookDelivery,
    WebhookEndpoint,
    WorkOrder,
)
from .notify import recommendation_created
from .telemetry import telemetry_store
from .vibration import indicator_channel_name, kinematics_of, waveform_load

logger = logging.getLogger(__name__)

DIAGNOSIS_EVENT = "diagnosis.created"
PLOT_POINTS = 600
# severity level -> (action, priority, days until due)
ADVICE = {
    "critical": ("replace", "urgent", 3),
    "high": ("replace", "high", 14),
    "moderate": ("inspect", "medium", 30),
    "low": ("inspect", "low", 90),
}


def _sig4(values: list[float]) -> list[float]:
    """Four significant digits (plot amplitudes), vectorised."""
    y = np.asarray(values, dtype=np.float64)
    scale = 10.0 ** (3 - np.floor(np.log10(np.where(y != 0, np.abs(y), 1.0))))
    return (np.round(y * scale) / scale).tolist()


def _round(values: list[float], digits: int) -> list[float]:
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


def _plots(analysis: Analysis, sample_rate: float) -> dict:
    sx, sy = analysis.spectrum.downsampled(PLOT_POINTS, min(sample_rate / 2, 6000.0))
    ex, ey = analysis.envelope.downsampled(PLOT_POINTS)
    ox, oy = analysis.order_spectrum.downsampled(PLOT_POINTS, 20.0)
    return {
        "spectrum": {"hz": _round(sx, 2), "g": _sig4(sy)},
        "envelope": {"hz": _round(ex, 2), "amplitude": _sig4(ey)},
        "orders": {"order": _round(ox, 3), "g": _sig4(oy)},
        "frequencies": [
            {"component": f.component, "kind": f.kind, "hz": round(f.hz, 3), "label": f.label}
            for f in analysis.frequencies
        ],
    }


def _indicators(analysis: Analysis) -> dict:
    ind = analysis.indicators
    return {
        "velocity_rms_mm_s": ind.velocity_rms_mm_s,
        "iso_zone": ind.iso_zone,
        "iso_band_hz": list(ind.iso_band_hz),
        "accel_rms_g": ind.accel_rms_g,
        "peak_g": ind.peak_g,
        "crest_factor": ind.crest_factor,
        "kurtosis": ind.kurtosis,
        "order_1x_mm_s": ind.order_1x_mm_s,
        "order_2x_mm_s": ind.order_2x_mm_s,
        "order_3x_mm_s": ind.order_3x_mm_s,
        "shaft_hz": ind.shaft_hz,
        "given_shaft_hz": ind.given_shaft_hz,
        "envelope_band_hz": list(ind.envelope_band_hz),
        "band_kurtosis": ind.band_kurtosis,
        "lines": [
            {
                "component": ln.component,
                "kind": ln.kind,
                "harmonic": ln.harmonic,
                "expected_hz": round(ln.expected_hz, 3),
                "hz": round(ln.hz, 3),
                "amplitude": float(f"{ln.amplitude:.4g}"),
                "snr": round(ln.snr, 3),
                "sidebands": [round(v, 3) for v in ln.sidebands],
            }
            for ln in ind.lines
            if ln.harmonic <= 3
        ],
    }


@dataclass
class _Analysed:
    """One capture's results, computed before anything is written."""

    capture: VibrationCapture
    analyses: list[Analysis]
    best: dict[tuple[str, str], tuple[str, Any]]
    loudest: int
    channel_values: dict[str, float]
    learned: dict | None


def _analysed(capture: VibrationCapture, kinematics, model_id) -> _Analysed:
    data = waveform_load(capture)
    shaft_hz = capture.shaft_rpm / 60.0
    analyses = [
        analyse_capture(data[i], capture.sample_rate, shaft_hz, kinematics, sensor=capture.sensor, unit=capture.unit)
        for i in range(data.shape[0])
    ]
    # Per (component, fault) the most confident axis.
    best: dict[tuple[str, str], tuple[str, Any]] = {}
    for axis, analysis in zip(capture.axes, analyses, strict=True):
        for diagnosis in analysis.diagnoses:
            key = (diagnosis.component, diagnosis.fault)
            if key not in best or diagnosis.confidence > best[key][1].confidence:
                best[key] = (axis, diagnosis)
    loudest = max(range(len(analyses)), key=lambda i: analyses[i].indicators.velocity_rms_mm_s)
    channel_values: dict[str, float] = {}
    for analysis in analyses:
        for name, value in analysis.indicators.channels().items():
            channel_values[name] = max(channel_values.get(name, -math.inf), value)
    learned = _learned(capture, kinematics, analyses[loudest], best, model_id)
    return _Analysed(capture, analyses, best, loudest, channel_values, learned)


def captures_analyse(*, captures: list[VibrationCapture]) -> tuple[list[dict], dict[str, Exception]]:
    """Analyse stored captures (of one organisation; one job's batch, read by `captures_for_analysis`) and store
    everything they yield (see the module docstring) in one transaction: diagnoses bulk-created, captures updated
    in one statement, indicator readings in one statement, the open work orders and webhook endpoints read once. A
    capture whose analysis raises is marked failed with its error and the others are stored. Returns (results of
    the analysed, failures by capture id)."""
    done: list[_Analysed] = []
    failures: dict[str, Exception] = {}
    for capture in captures:
        try:
            kinematics = kinematics_of(capture.asset)
            if kinematics is None:
                raise JobFailure("The asset has no kinematics any more.", code="no_kinematics")
            model_id = capture.current_model_id  # type: ignore[attr-defined]  # annotated by captures_for_analysis
            done.append(_analysed(capture, kinematics, model_id))
        except Exception as exc:
            if not isinstance(exc, JobFailure):
                logger.exception("Analysing capture %s failed", capture.pk)
            failures[str(capture.pk)] = exc
    if failures:
        failed = [c for c in captures if str(c.pk) in failures]
        for capture in failed:
            failure = failures[str(capture.pk)]
            capture.status = VibrationCapture.Status.FAILED
            capture.error = f"{type(failure).__name__}: {failure}"[:2000]
        VibrationCapture.objects.bulk_update(failed, ["status", "error"])
    if not done:
        return [], failures
    names = {indicator_channel_name(a.capture.sensor, n) for a in done for n in a.channel_values}
    type_ids = {a.capture.asset.asset_type_id for a in done}
    channels = {
        (type_id, name): pk
        for type_id, name, pk in Channel.objects.filter(asset_type_id__in=type_ids, name__in=names).values_list(
            "asset_type_id", "name", "pk"
        )
    }
    rows = []
    for a in done:
        capture = a.capture
        for name, value in a.channel_values.items():
            channel_id = channels.get((capture.asset.asset_type_id, indicator_channel_name(capture.sensor, name)))
            if channel_id is not None and math.isfinite(value):
                rows.append((capture.organization_id, capture.asset_id, channel_id, capture.captured_at, float(value)))
    created: list[VibrationDiagnosis] = []
    results: list[dict] = []
    open_orders = _OpenWorkOrders()
    now = timezone.now()
    with transaction.atomic():
        again = [a.capture.pk for a in done if a.capture.status != VibrationCapture.Status.RECEIVED]
        if again:
            # Analysed before (a re-analysis): start over. A first analysis has none (its writes are all-or-nothing).
            VibrationDiagnosis.objects.filter(capture_id__in=again).delete()
        for a in done:
            capture, asset, loudest = a.capture, a.capture.asset, a.analyses[a.loudest]
            capture.indicators = {
                "axes": {axis: _indicators(x) for axis, x in zip(capture.axes, a.analyses, strict=True)},
                "iso_zone": loudest.indicators.iso_zone,
                "velocity_rms_mm_s": loudest.indicators.velocity_rms_mm_s,
                "learned": a.learned,
            }
            capture.features = [round(float(v), 6) for v in loudest.features]
            capture.plots = _plots(loudest, capture.sample_rate)
            capture.status = VibrationCapture.Status.ANALYSED
            capture.analysed_at = now
            capture.error = ""
            records, recommendations = [], []
            for axis, diagnosis in a.best.values():
                record = VibrationDiagnosis(
                    organization_id=capture.organization_id,
                    asset=asset,
                    capture=capture,
                    component=diagnosis.component,
                    fault=diagnosis.fault,
                    label=diagnosis.label,
                    confidence=diagnosis.confidence,
                    severity=diagnosis.severity,
                    severity_level=diagnosis.severity_level,
                    source=getattr(diagnosis, "source", VibrationDiagnosis.Source.PHYSICS),
                    explanation_model=asset.asset_type.explainer_model,
                    evidence=[
                        {
                            "label": e.label,
                            "hz": round(e.hz, 3),
                            "amplitude": float(f"{e.amplitude:.4g}"),
                            "snr_db": e.snr_db,
                            "spectrum": e.spectrum,
                            "axis": axis,
                        }
                        for e in diagnosis.evidence
                    ],
                )
                recommendation = _recommend(capture, record, open_orders)
                if recommendation is not None:
                    record.recommendation = recommendation
                    recommendations.append(recommendation)
                    recommendation_created(recommendation=recommendation)
                records.append(record)
            created += records
            results.append(
                {
                    "capture": str(capture.pk),
                    "iso_zone": capture.indicators["iso_zone"],
                    "diagnoses": [
                        {"label": d.label, "confidence": d.confidence, "severity": d.severity} for d in records
                    ],
                    "recommendations": [str(r.pk) for r in recommendations],
                }
            )
        VibrationDiagnosis.objects.bulk_create(created)
        _analysed_store([a.capture for a in done], analysed_at=now)
        if rows:
            telemetry_store(rows=rows)
        diagnoses_created(diagnoses=created)
    return results, failures


def _analysed_store(captures: list[VibrationCapture], *, analysed_at) -> None:
    """Write the captures' results in one UPDATE from a VALUES list. Not the ORM's bulk_update (a CASE per field
    and capture: 4 ms a capture) nor arrays of JSON text (client-side binding escapes every quote of an array
    element in Python: 1.3 ms a capture); each value bound on its own is escaped by libpq."""
    rows = ", ".join(["(%s::uuid, %s::jsonb, %s::jsonb, %s::jsonb)"] * len(captures))
    params: list = [VibrationCapture.Status.ANALYSED.value, analysed_at]
    for c in captures:
        params += [c.pk, json.dumps(c.indicators), json.dumps(c.features), json.dumps(c.plots, separators=(",", ":"))]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE maintenance_vibrationcapture AS c SET indicators = v.indicators, features = v.features, "  # noqa: S608  (placeholders only)
            "plots = v.plots, status = %s, analysed_at = %s, error = '' "
            f"FROM (VALUES {rows}) AS v(id, indicators, features, plots) WHERE c.id = v.id",
            params,
        )


def capture_analyse(*, capture: VibrationCapture) -> dict:
    """Analyse one stored capture and store everything it yields (see the module docstring)."""
    results, failures = captures_analyse(captures=[capture])
    if failures:
        exc = failures[str(capture.pk)]
        if isinstance(exc, JobFailure):
            raise exc
        raise JobFailure(f"{type(exc).__name__}: {exc}", code="analysis_failed") from exc
    return results[0]


class _OpenWorkOrders:
    """(asset, action, component) of the open or acknowledged work orders, read once per asset per batch and kept
    up to date as the batch opens new ones, so a fault seen in several captures opens one work order."""

    def __init__(self):
        self._by_asset: dict = {}

    def of(self, asset) -> set[tuple[str, str]]:
        if asset.pk not in self._by_asset:
            self._by_asset[asset.pk] = set(
                WorkOrder.objects.filter(
                    asset=asset, status__in=[WorkOrder.Status.OPEN, WorkOrder.Status.ACKNOWLEDGED]
                ).values_list("recommendation__action", "recommendation__component")
            )
        return self._by_asset[asset.pk]


def _recommend(
    capture: VibrationCapture, diagnosis: VibrationDiagnosis, open_orders: _OpenWorkOrders
) -> Recommendation | None:
    action, priority, days = ADVICE[diagnosis.severity_level]
    if priority not in RECOMMEND_FROM_PRIORITY:
        return None
    asset = capture.asset
    component = diagnosis.label[:100]
    orders = open_orders.of(asset)
    if (action, component) in orders:
        return None
    orders.add((action, component))
    due_by = capture.captured_at + timedelta(days=days)
    peaks = "; ".join(f"{e['label']} at {e['hz']:.1f} Hz ({e['snr_db']:.0f} dB)" for e in diagnosis.evidence[:4])
    recommendation = Recommendation.objects.create(
        organization_id=capture.organization_id,
        asset=asset,
        action=action,
        component=component,
        channel=indicator_channel_name(capture.sensor, "velocity_rms"),
        due_by=due_by,
        priority=priority,
        conservative_rul=round(days * 86400 / asset.asset_type.cycle_seconds, 2),
        reason=(
            f"Vibration diagnosis: {diagnosis.label}, severity {diagnosis.severity_level} "
            f"({diagnosis.severity:.2f}), confidence {diagnosis.confidence:.2f}. Evidence: {peaks or 'n/a'}. "
            f"ISO 20816 zone {capture.indicators.get('iso_zone', '?') if capture.indicators else '?'}."
        ),
        explanation_model=asset.asset_type.explainer_model,
    )
    WorkOrder.objects.create(organization_id=capture.organization_id, asset=asset, recommendation=recommendation)
    return recommendation


def diagnosis_payload(diagnosis: VibrationDiagnosis) -> dict:
    asset = diagnosis.asset
    return {
        "id": str(diagnosis.pk),
        "asset": {"id": str(asset.pk), "code": asset.code, "name": asset.name},
        "capture": str(diagnosis.capture_id),
        "component": diagnosis.component,
        "fault": diagnosis.fault,
        "label": diagnosis.label,
        "confidence": diagnosis.confidence,
        "severity": diagnosis.severity,
        "severity_level": diagnosis.severity_level,
        "evidence": diagnosis.evidence,
        "recommendation": str(diagnosis.recommendation_id) if diagnosis.recommendation_id else None,
        "created_at": diagnosis.created_at.isoformat(),
    }


def diagnoses_created(*, diagnoses: list[VibrationDiagnosis]) -> list[WebhookDelivery]:
    """A `diagnosis.created` delivery per diagnosis and subscribed endpoint (of one organisation's diagnoses), and
    one `maintenance.explain_diagnoses` message for their plain-language explanations, sent on commit."""
    if not diagnoses:
        return []
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(
            organization_id=diagnoses[0].organization_id, is_active=True
        ).select_related("organization")
        if DIAGNOSIS_EVENT in endpoint.events
    ]
    deliveries = [
        WebhookDelivery.objects.create(
            organization_id=diagnosis.organization_id,
            endpoint=endpoint,
            event=DIAGNOSIS_EVENT,
            payload={"type": DIAGNOSIS_EVENT, "organization": endpoint.organization.slug, "data": payload},
        )
        for diagnosis in diagnoses
        if endpoints
        for payload in (diagnosis_payload(diagnosis),)
        for endpoint in endpoints
    ]

    explain = {"diagnosis_ids": [str(d.pk) for d in diagnoses], "organization_id": str(diagnoses[0].organization_id)}

    def send() -> None:
        for delivery in deliveries:
            current_app.send_task(
                "maintenance.deliver_webhook", kwargs={"delivery_id": str(delivery.pk)}, queue="maintenance"
            )
        current_app.send_task("maintenance.explain_diagnoses", kwargs=explain, queue="maintenance")

    transaction.on_commit(send)
    return deliveries


def captures_for_analysis(*, ids: list[str], organization_id):
    """The organisation's captures with what their analysis reads (asset, asset type, kinematics, and the asset
    type's current learned model as `current_model_id`), in one query."""
    current = VibrationModel.objects.filter(asset_type_id=OuterRef("asset__asset_type_id"), is_current=True)
    return (
        VibrationCapture.objects.select_related("asset__asset_type", "asset__kinematics")
        .filter(pk__in=ids, organization_id=organization_id)
        .annotate(current_model_id=Subquery(current.values("pk")[:1]))
    )


def vibration_analyse_execute(ctx: JobContext) -> dict:
    """One capture (`capture_id`) or a batch (`capture_ids`, from one upload): analysed and stored together, metered
    once (`maintenance.captures`, quantity = the captures analysed)."""
    ids = ctx.params.get("capture_ids") or [ctx.params["capture_id"]]
    by_id = {str(c.pk): c for c in captures_for_analysis(ids=ids, organization_id=ctx.organization_id)}
    captures = [by_id[i] for i in ids if i in by_id]
    if not captures:
        raise JobFailure(
            "The capture no longer exists." if len(ids) == 1 else "The captures no longer exist.", code="not_found"
        )
    if len(ids) == 1:
        result = capture_analyse(capture=captures[0])
        analysed, key = 1, f"maintenance.capture:{captures[0].pk}"
    else:
        results, failures = captures_analyse(captures=captures)
        result = {
            "captures": results,
            "failed": {pk: f"{type(exc).__name__}: {exc}"[:500] for pk, exc in failures.items()},
            "missing": [i for i in ids if i not in by_id],
        }
        analysed, key = len(results), f"maintenance.captures:{ctx.job.id}"
    if analysed:
        try:
            usage_record(
                organization_id=ctx.organization_id,
                meter=CAPTURES_METER,
                quantity=analysed,
                idempotency_key=key,
                attributes={"asset": captures[0].asset.code, "sensor": captures[0].sensor, "captures": analysed},
            )
        except Exception:
            logger.exception("Recording the analysis of %s captures (job %s) failed", analysed, ctx.job.id)
            ctx.event("Could not record these captures for billing.", level="warning")
    if len(ids) > 1 and result["failed"]:
        raise JobFailure(
            f"{len(result['failed'])} of {len(ids)} captures could not be analysed; the others were stored.",
            code="analysis_failed",
            result=result,
        )
    return result


@dataclass(frozen=True)
class _LearnedDiagnosis:
    component: str
    fault: str
    label: str
    confidence: float
    severity: float
    severity_level: str
    evidence: tuple = ()
    source: str = VibrationDiagnosis.Source.LEARNED


_CLASSIFIERS: dict[str, VibrationClassifier] = {}


def _classifier(model_id) -> VibrationClassifier:
    """Stored classifiers are immutable: a worker reads and unpickles each once (the last few kept)."""
    key = str(model_id)
    if key not in _CLASSIFIERS:
        if len(_CLASSIFIERS) >= 8:
            _CLASSIFIERS.pop(next(iter(_CLASSIFIERS)))
        artefact = VibrationModel.objects.values_list("artefact", flat=True).get(pk=model_id)
        _CLASSIFIERS[key] = VibrationClassifier.from_bytes(bytes(artefact))
    return _CLASSIFIERS[key]


def _learned(capture: VibrationCapture, kinematics, analysis: Analysis, best: dict, model_id) -> dict | None:
    """The asset type's learned classifier (`model_id`, its current one; None if it has none) on this capture. A
    fault it is confident of and the physics did not name becomes a diagnosis of its own (source `learned`)."""
    if model_id is None or not analysis.features:
        return None
    classifier = _classifier(model_id)
    if classifier.n_features != len(analysis.features):
        return None
    prediction = classifier.predict(analysis.features)
    result = {"label": prediction.label, "probability": prediction.probability, "model": str(model_id)}
    if prediction.label in ("normal", "") or prediction.probability < LEARNED_MIN_PROBABILITY:
        return result
    if any(fault == prediction.label for _, fault in best):
        return result
    try:
        sensor_bearing = kinematics.sensor(capture.sensor).bearing
    except KeyError:
        sensor_bearing = None
    bearing = next((b for b in kinematics.bearings if b.name == sensor_bearing), None)
    if prediction.label in ("outer_race", "inner_race", "rolling_element", "cage") and bearing is not None:
        component, name = bearing.name, f"{bearing.name} {bearing.geometry.model}"
    else:
        component = name = kinematics.shafts[0].name
    severity = min(1.0, max(0.0, math.log10(max(analysis.indicators.peak_g, 1e-9) / 0.5) / math.log10(40.0)))
    level = "critical" if severity >= 0.75 else "high" if severity >= 0.5 else "moderate" if severity >= 0.25 else "low"
    best[(component, prediction.label)] = (
        capture.axes[0],
        _LearnedDiagnosis(
            component=component,
            fault=prediction.label,
            label=f"{name}, {FAULT_LABELS.get(prediction.label, prediction.label)}",
            confidence=prediction.probability,
            severity=round(severity, 3),
            severity_level=level,
        ),
    )
    return result


def vibration_train_execute(ctx: JobContext) -> dict:
    asset_type = AssetType.objects.filter(pk=ctx.params["asset_type_id"], organization_id=ctx.organization_id).first()
    if asset_type is None:
        raise JobFailure("The asset type no longer exists.", code="not_found")
    rows = list(
        VibrationCapture.objects.filter(asset__asset_type=asset_type, status=VibrationCapture.Status.ANALYSED)
        .exclude(label="")
        .values_list("features", "label")
    )
    width = max((len(f) for f, _ in rows), default=0)
    rows = [(f, label) for f, label in rows if len(f) == width and width]
    try:
        classifier = train_vibration_classifier([f for f, _ in rows], [label for _, label in rows])
    except ValueError as exc:
        raise JobFailure(str(exc), code="not_enough_labels") from exc
    with transaction.atomic():
        VibrationModel.objects.filter(asset_type=asset_type, is_current=True).update(is_current=False)
        stored = VibrationModel.objects.create(
            organization_id=ctx.organization_id,
            asset_type=asset_type,
            artefact=classifier.to_bytes(),
            classes=list(classifier.classes),
            captures=len(rows),
            job=ctx.job,
        )
    try:
        usage_record(
            organization_id=ctx.organization_id,
            meter=METER,
            quantity=1,
            idempotency_key=f"maintenance:{ctx.job.id}",
            attributes={"kind": "vibration_train", "asset_type": asset_type.code},
        )
    except Exception:
        logger.exception("Recording the model run of job %s failed", ctx.job.id)
    return {"model_id": str(stored.pk), "classes": list(classifier.classes), "captures": len(rows)}
