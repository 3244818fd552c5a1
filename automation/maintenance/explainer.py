"""Plain-language explanations of recommendations, written by the tenant's own model through the gateway.

The worker calls the OpenAI-compatible gateway (`MAINTENANCE_EXPLAINER_BASE_URL`, default PUBLIC_BASE_URL) like
any client of the organisation, with the organisation's system key for purpose `maintenance.explainer` (scope
`inference`, see `tenants.system_keys`) and the model chosen for the asset type (default the base model). So the
call is routed, rate-limited and metered exactly like the tenant's own traffic. When no model answers (no server,
no capacity, the gateway down) the recommendation keeps `explanation_status = pending` with the reason in
`explanation_error`, and `maintenance.explain_pending` tries again later; after MAX_ATTEMPTS it is marked failed.
No text is made up. The call itself is `tenants.model_client.model_ask`.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from tenants.model_client import ModelUnavailable, model_ask
from tenants.models import Organization

from .conf import explainer_base_url
from .models import Recommendation

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


def _ask(*, organization: Organization, model: str, facts: str) -> str:
    try:
        return model_ask(
            organization=organization,
            base_url=explainer_base_url(),
            purpose=KEY_PURPOSE,
            key_name=KEY_NAME,
            model=model,
            messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": facts}],
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
    if recommendation.explanation_status != Recommendation.ExplanationStatus.PENDING:
        return recommendation
    organization = Organization.objects.get(pk=organization_id)
    model = recommendation.explanation_model or recommendation.asset.asset_type.explainer_model
    attempts = recommendation.explanation_attempts + 1
    try:
        text = _ask(organization=organization, model=model, facts=_facts(recommendation))
    except Exception as exc:
        if not isinstance(exc, ExplainerUnavailable):
            logger.exception("Explaining recommendation %s failed", recommendation.pk)
            exc = ExplainerUnavailable(f"Internal error while asking the model: {type(exc).__name__}: {exc}")
        gave_up = attempts >= MAX_ATTEMPTS
        retry = getattr(settings, "MAINTENANCE_EXPLAINER_RETRY_SECONDS", 300) * min(2 ** (attempts - 1), 12)
        Recommendation.objects.filter(pk=recommendation.pk, explanation_status="pending").update(
            explanation_attempts=attempts,
            explanation_error=str(exc)[:2000],
            explanation_status="failed" if gave_up else "pending",
            explanation_retry_at=None if gave_up else timezone.now() + timedelta(seconds=retry),
        )
    else:
        Recommendation.objects.filter(pk=recommendation.pk, explanation_status="pending").update(
            explanation=text,
            explanation_status="ready",
            explanation_error="",
            explanation_attempts=attempts,
            explanation_retry_at=None,
            explanation_model=model,
        )
    recommendation.refresh_from_db()
    return recommendation


def pending_explanations(limit: int = 100) -> list[tuple[str, str]]:
    """(recommendation id, organisation id) of explanations due for another try."""
    now = timezone.now()
    rows = (
        Recommendation.objects.filter(explanation_status="pending", explanation_retry_at__lte=now)
        .order_by("explanation_retry_at")
        .values_list("pk", "organization_id")[:limit]
    )
    return [(str(pk), str(org)) for pk, org in rows]
