"""Plain-language explanations of recommendations and of vibration diagnoses, written by the tenant's own model
through the gateway.

The worker calls the OpenAI-compatible gateway (`MAINTENANCE_EXPLAINER_BASE_URL`, default PUBLIC_BASE_URL) like
any client of the organisation, with the organisation's system key for purpose `maintenance.explainer` (scope
`inference`, see `tenants.system_keys`) and the model chosen for the asset type (default the base model). So the
call is routed, rate-limited and metered exactly like the tenant's own traffic. When no model answers (no server,
no capacity, the gateway down) the recommendation keeps `explanation_status = pending` with the reason in
`explanation_error`, and `maintenance.explain_pending` tries again later; after MAX_ATTEMPTS it is marked failed.
No text is made up. A vibration diagnosis carries the same explanation fields and goes through the same steps,
with its own facts (the component and fault, confidence, severity, the peaks that matched, the ISO zone). The call
itself is `tenants.model_client.model_ask`.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from tenants.model_client import ModelUnavailable, model_ask
from tenants.models import Organization

from .conf import explainer_base_url
from .models import Recommendation, VibrationDiagnosis

logger = logging.getLogger(__name__)

KEY_NAME = "maintenance explainer (system)"
KEY_PURPOSE = "maintenance.explainer"
MAX_ATTEMPTS = 12
MAX_TOKENS = 220
SYSTEM_PROMPT = (
    "You are a maintenance planner's assistant in a factory. Explain the recommendation below to a "
    "technician in two or three short, plain sentences: what to do, on which component, by when, and "
    "why. Use only the facts given; do not invent numbers."
)
DIAGNOSIS_PROMPT = (
    "You are a reliability engineer's assistant in a factory. Explain the vibration diagnosis below to a "
    "technician in two or three short, plain sentences: which part is failing and how, how sure and how severe, "
    "and which peaks in the vibration show it. Use only the facts given; do not invent numbers."
)


class ExplainerUnavailable(ModelUnavailable):
    """No explanation this time; the message says why (kept on the recommendation)."""


def _facts(recommendation: Recommendation) -> str:
    asset, health = recommendation.asset, recommendation.health
    cycle_hours = asset.asset_type.cycle_seconds / 3600
    lines = [
        f"Asset: {asset.code}"
        + (f" ({asset.name})" if asset.name else "")
        + f", type {asset.asset_type.code}"
        + (f", site {asset.site}" if asset.site else ""),
        f"Recommendation: {recommendation.action} the {recommendation.component} by "
        f"{recommendation.due_by:%Y-%m-%d %H:%M} UTC, priority {recommendation.priority}.",
        f"Evidence: {recommendation.reason}.",
        f"One cycle is {cycle_hours:g} hours.",
    ]
    if health is not None:
        lines.append(f"Health score: {health.health_score:.0f} of 100.")
    return "\n".join(lines)


def _diagnosis_facts(diagnosis: VibrationDiagnosis) -> str:
    asset, capture = diagnosis.asset, diagnosis.capture
    indicators = capture.indicators or {}
    peaks = "; ".join(
        f"{e['label']} at {e['hz']:.1f} Hz, {e['snr_db']:.0f} dB above the floor ({e['spectrum']} spectrum)"
        for e in diagnosis.evidence[:5]
    )
    lines = [
        f"Asset: {asset.code}" + (f" ({asset.name})" if asset.name else "") + f", type {asset.asset_type.code}",
        f"Diagnosis: {diagnosis.label}; confidence {diagnosis.confidence:.2f} of 1; severity "
        f"{diagnosis.severity_level} ({diagnosis.severity:.2f} of 1); "
        + ("from the machine's kinematics and the signal." if diagnosis.source == "physics" else "learned."),
        f"Measured {capture.captured_at:%Y-%m-%d %H:%M} UTC by sensor {capture.sensor}, shaft at "
        f"{capture.shaft_rpm:.0f} rpm.",
        f"Peaks that matched: {peaks or 'none listed'}.",
    ]
    if indicators.get("velocity_rms_mm_s") is not None:
        lines.append(
            f"Overall vibration velocity {indicators['velocity_rms_mm_s']:.2f} mm/s RMS, ISO 20816 zone "
            f"{indicators.get('iso_zone', '?')} (A good, D damage)."
        )
    r = diagnosis.recommendation
    if r is not None:
        lines.append(f"Recommended: {r.action} the {r.component} by {r.due_by:%Y-%m-%d} UTC.")
    return "\n".join(lines)


def _ask(*, organization: Organization, model: str, facts: str, prompt: str = SYSTEM_PROMPT) -> str:
    try:
        return model_ask(
            organization=organization,
            base_url=explainer_base_url(),
            purpose=KEY_PURPOSE,
            key_name=KEY_NAME,
            model=model,
            messages=[{"role": "system", "content": prompt}, {"role": "user", "content": facts}],
            max_tokens=MAX_TOKENS,
            timeout=getattr(settings, "MAINTENANCE_EXPLAINER_TIMEOUT_S", 60),
        )
    except ModelUnavailable as exc:
        raise ExplainerUnavailable(str(exc)) from exc


def recommendation_explain(*, recommendation_id: str, organization_id: str) -> Recommendation:
    """One attempt at explaining; records the text, or why not and when to try again."""
    recommendation = Recommendation.objects.select_related("asset__asset_type", "health").get(
        pk=recommendation_id, organization_id=organization_id
    )
    return _explain(recommendation, facts=_facts, prompt=SYSTEM_PROMPT)


def diagnosis_explain(*, diagnosis_id: str, organization_id: str) -> VibrationDiagnosis:
    """One attempt at explaining a vibration diagnosis (as `recommendation_explain`)."""
    diagnosis = VibrationDiagnosis.objects.select_related("asset__asset_type", "capture", "recommendation").get(
        pk=diagnosis_id, organization_id=organization_id
    )
    return _explain(diagnosis, facts=_diagnosis_facts, prompt=DIAGNOSIS_PROMPT)


def _explain(item, *, facts, prompt: str):
    """Ask the model about `item` (a Recommendation or a VibrationDiagnosis, which share the explanation fields);
    record the text, or why not and when to try again."""
    if item.explanation_status != Recommendation.ExplanationStatus.PENDING:
        return item
    model_class = type(item)
    organization = Organization.objects.get(pk=item.organization_id)
    model = item.explanation_model or item.asset.asset_type.explainer_model
    attempts = item.explanation_attempts + 1
    try:
        text = _ask(organization=organization, model=model, facts=facts(item), prompt=prompt)
    except Exception as exc:
        if not isinstance(exc, ExplainerUnavailable):
            logger.exception("Explaining %s %s failed", model_class.__name__, item.pk)
            exc = ExplainerUnavailable(f"Internal error while asking the model: {type(exc).__name__}: {exc}")
        gave_up = attempts >= MAX_ATTEMPTS
        retry = getattr(settings, "MAINTENANCE_EXPLAINER_RETRY_SECONDS", 300) * min(2 ** (attempts - 1), 12)
        model_class.objects.filter(pk=item.pk, explanation_status="pending").update(
            explanation_attempts=attempts,
            explanation_error=str(exc)[:2000],
            explanation_status="failed" if gave_up else "pending",
            explanation_retry_at=None if gave_up else timezone.now() + timedelta(seconds=retry),
        )
    else:
        model_class.objects.filter(pk=item.pk, explanation_status="pending").update(
            explanation=text,
            explanation_status="ready",
            explanation_error="",
            explanation_attempts=attempts,
            explanation_retry_at=None,
            explanation_model=model,
        )
    item.refresh_from_db()
    return item


def pending_explanations(limit: int = 100, *, of=Recommendation) -> list[tuple[str, str]]:
    """(id, organisation id) of the recommendations (or, with `of=VibrationDiagnosis`, the diagnoses) whose
    explanations are due for another try."""
    now = timezone.now()
    rows = (
        of.objects.filter(explanation_status="pending", explanation_retry_at__lte=now)
        .order_by("explanation_retry_at")
        .values_list("pk", "organization_id")[:limit]
    )
    return [(str(pk), str(org)) for pk, org in rows]
