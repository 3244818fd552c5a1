"""The `maintenance.vibration_analyse` job: one capture through the vibration engine, its results stored.

Per capture: indicators per axis; diagnoses (physics; plus the learned classifier of the asset type when one has
been trained on the tenant's labelled captures); plot data for the portal (downsampled spectra, the fault
frequencies); the indicators written as telemetry of the asset's indicator channels (so anomaly detection, RUL,
recommendations and work orders use them); from moderate severity a recommendation with a work order (not
repeated while one is open for the same component), explained and sent to webhooks as any recommendation is;
a `diagnosis.created` webhook per diagnosis; one `maintenance.captures` usage event.
"""

import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from celery import current_app
from django.db import transaction
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
    return [float(v) for v in np.round(y * scale) / scale]


def _round(values: list[float], digits: int) -> list[float]:
    return [float(v) for v in np.round(np.asarray(values, dtype=np.float64), digits)]


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


def capture_analyse(*, capture: VibrationCapture) -> dict:
    """Analyse one stored capture and store everything it yields (see the module docstring)."""
    asset = capture.asset
    kinematics = kinematics_of(asset)
    if kinematics is None:
        raise JobFailure("The asset has no kinematics any more.", code="no_kinematics")
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
    channels = dict(
        Channel.objects.filter(
            asset_type_id=asset.asset_type_id,
            name__in=[indicator_channel_name(capture.sensor, n) for n in channel_values],
        ).values_list("name", "pk")
    )
    rows = []
    for name, value in channel_values.items():
        channel_id = channels.get(indicator_channel_name(capture.sensor, name))
        if channel_id is not None and math.isfinite(value):
            rows.append((capture.organization_id, asset.pk, channel_id, capture.captured_at, float(value)))
    learned = _learned(capture, kinematics, analyses[loudest], best)
    created: list[VibrationDiagnosis] = []
    recommendations: list[Recommendation] = []
    with transaction.atomic():
        if capture.status != VibrationCapture.Status.RECEIVED:
            # Analysed before (a re-analysis): start over. A first analysis has none (its writes are all-or-nothing).
            VibrationDiagnosis.objects.filter(capture=capture).delete()
        for axis, diagnosis in best.values():
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
            recommendation = _recommend(capture, record)
            if recommendation is not None:
                record.recommendation = recommendation
                recommendations.append(recommendation)
            created.append(record)
        VibrationDiagnosis.objects.bulk_create(created)
        capture.indicators = {
            "axes": {axis: _indicators(a) for axis, a in zip(capture.axes, analyses, strict=True)},
            "iso_zone": analyses[loudest].indicators.iso_zone,
            "velocity_rms_mm_s": analyses[loudest].indicators.velocity_rms_mm_s,
            "learned": learned,
        }
        capture.features = [round(float(v), 6) for v in analyses[loudest].features]
        capture.plots = _plots(analyses[loudest], capture.sample_rate)
        capture.status = VibrationCapture.Status.ANALYSED
        capture.analysed_at = timezone.now()
        capture.error = ""
        capture.save(update_fields=["indicators", "features", "plots", "status", "analysed_at", "error"])
        if rows:
            telemetry_store(rows=rows)
        for recommendation in recommendations:
            recommendation_created(recommendation=recommendation)
        diagnoses_created(diagnoses=created)
    return {
        "capture": str(capture.pk),
        "iso_zone": capture.indicators["iso_zone"],
        "diagnoses": [{"label": d.label, "confidence": d.confidence, "severity": d.severity} for d in created],
        "recommendations": [str(r.pk) for r in recommendations],
    }


def _recommend(capture: VibrationCapture, diagnosis: VibrationDiagnosis) -> Recommendation | None:
    action, priority, days = ADVICE[diagnosis.severity_level]
    if priority not in RECOMMEND_FROM_PRIORITY:
        return None
    asset = capture.asset
    component = diagnosis.label[:100]
    if WorkOrder.objects.filter(
        asset=asset,
        status__in=[WorkOrder.Status.OPEN, WorkOrder.Status.ACKNOWLEDGED],
        recommendation__action=action,
        recommendation__component=component,
    ).exists():
        return None
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


def vibration_analyse_execute(ctx: JobContext) -> dict:
    capture = (
        VibrationCapture.objects.select_related("asset__asset_type", "asset__kinematics")
        .filter(pk=ctx.params["capture_id"], organization_id=ctx.organization_id)
        .first()
    )
    if capture is None:
        raise JobFailure("The capture no longer exists.", code="not_found")
    try:
        result = capture_analyse(capture=capture)
    except Exception as exc:
        VibrationCapture.objects.filter(pk=capture.pk).update(
            status=VibrationCapture.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        raise
    try:
        usage_record(
            organization_id=ctx.organization_id,
            meter=CAPTURES_METER,
            quantity=1,
            idempotency_key=f"maintenance.capture:{capture.pk}",
            attributes={"asset": capture.asset.code, "sensor": capture.sensor},
        )
    except Exception:
        logger.exception("Recording the analysis of capture %s failed", capture.pk)
        ctx.event("Could not record this capture for billing.", level="warning")
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


def _learned(capture: VibrationCapture, kinematics, analysis: Analysis, best: dict) -> dict | None:
    """The asset type's learned classifier on this capture, if it has one. A fault it is confident of and the
    physics did not name becomes a diagnosis of its own (source `learned`)."""
    model_id = (
        VibrationModel.objects.filter(asset_type_id=capture.asset.asset_type_id, is_current=True)
        .values_list("pk", flat=True)
        .first()
    )
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
