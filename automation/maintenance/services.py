"""Writes of predictive maintenance: master data, failure history, credentials, webhooks, work orders, jobs.

Telemetry has its own module (`telemetry.py`); model training and scoring run in jobs (`modeling.py`).
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.quotas import quota_check
from jobs.models import Job
from jobs.services import job_create
from tenants.actor import Actor
from tenants.models import Organization

from . import signing
from .conf import SCORE_JOB_KIND, TRAIN_JOB_KIND, WEBHOOK_EVENTS
from .models import (
    Asset,
    AssetEvent,
    AssetType,
    Channel,
    IngestionKey,
    Recommendation,
    TrainedModel,
    WebhookEndpoint,
    WorkOrder,
)

CHANNEL_FIELDS = ("unit", "min_value", "max_value", "component", "is_setting")


def _saved(instance):
    instance.full_clean(validate_constraints=True)
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:  # a concurrent insert of the same code
        raise ValidationError({"code": ["This code is already taken."]}) from exc
    return instance


# --- asset types and channels ---------------------------------------------------------------------------------------


def _channels_set(*, asset_type: AssetType, channels: Sequence[dict]) -> None:
    """Make the type's channels exactly `channels` (by name): update, add, and remove those no longer named.
    Removing a channel deletes its telemetry."""
    names = [c["name"] for c in channels]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationError({"channels": [f"Channel {n!r} is listed twice." for n in duplicates]})
    existing = {c.name: c for c in asset_type.channels.all()}
    for position, data in enumerate(channels):
        channel = existing.pop(data["name"], None) or Channel(
            organization_id=asset_type.organization_id, asset_type=asset_type, name=data["name"]
        )
        for field in CHANNEL_FIELDS:
            if field in data:
                setattr(channel, field, data[field])
        channel.position = position
        try:
            channel.full_clean(exclude=["asset_type", "organization"])
        except ValidationError as exc:
            raise ValidationError({f"channels[{position}]": exc.messages}) from exc
        channel.save()
    for channel in existing.values():
        channel.delete()


def asset_type_create(
    *,
    organization: Organization,
    code: str,
    channels: Sequence[dict],
    name: str = "",
    cycle_seconds: int = 3600,
    rul_cap: float | None = None,
    explainer_model: str | None = None,
) -> AssetType:
    asset_type = AssetType(organization=organization, code=code, name=name, cycle_seconds=cycle_seconds)
    if rul_cap is not None:
        asset_type.rul_cap = rul_cap
    if explainer_model:
        asset_type.explainer_model = explainer_model
    with transaction.atomic():
        _saved(asset_type)
        _channels_set(asset_type=asset_type, channels=channels)
    return asset_type


def asset_type_update(*, asset_type: AssetType, data: dict) -> AssetType:
    with transaction.atomic():
        for field in ("code", "name", "cycle_seconds", "rul_cap", "explainer_model"):
            if field in data:
                setattr(asset_type, field, data[field])
        _saved(asset_type)
        if "channels" in data:
            _channels_set(asset_type=asset_type, channels=data["channels"])
    return asset_type


def asset_type_delete(*, asset_type: AssetType) -> None:
    if asset_type.assets.exists():
        raise ValidationError({"non_field_errors": ["This asset type still has assets; delete them first."]})
    asset_type.delete()


# --- assets and their history ---------------------------------------------------------------------------------------


def asset_create(
    *, organization: Organization, code: str, asset_type: AssetType, name: str = "", site: str = ""
) -> Asset:
    if asset_type.organization_id != organization.pk:
        raise ValidationError({"asset_type": ["No such asset type."]})
    return _saved(Asset(organization=organization, code=code, asset_type=asset_type, name=name, site=site))


def asset_update(*, asset: Asset, data: dict) -> Asset:
    if "asset_type" in data and data["asset_type"].pk != asset.asset_type_id:
        raise ValidationError({"asset_type": ["An asset keeps its type; create a new asset instead."]})
    for field in ("code", "name", "site"):
        if field in data:
            setattr(asset, field, data[field])
    return _saved(asset)


def asset_delete(*, asset: Asset) -> None:
    asset.delete()  # its telemetry, history and results go with it


def asset_event_create(
    *,
    organization: Organization,
    asset: Asset,
    kind: str,
    occurred_at: datetime,
    component: str = "",
    description: str = "",
) -> AssetEvent:
    if asset.organization_id != organization.pk:
        raise ValidationError({"asset": ["No such asset."]})
    if occurred_at > timezone.now():
        raise ValidationError({"occurred_at": ["Record events once they have happened."]})
    event = AssetEvent(
        organization=organization,
        asset=asset,
        kind=kind,
        occurred_at=occurred_at,
        component=component,
        description=description,
    )
    event.full_clean()
    event.save()
    return event


def asset_event_delete(*, event: AssetEvent) -> None:
    event.delete()


# --- device credentials ---------------------------------------------------------------------------------------------


def ingestion_key_create(
    *, organization: Organization, name: str, asset: Asset | None = None
) -> tuple[IngestionKey, str]:
    """Returns the key and its secret, which is never stored (it is derived) and cannot be shown again."""
    if asset is not None and asset.organization_id != organization.pk:
        raise ValidationError({"asset": ["No such asset."]})
    return IngestionKey.issue(
        secret_for=signing.ingestion_secret,
        organization=organization,
        asset=asset,
        name=name,
        key_id=signing.new_key_id(),
    )


def ingestion_key_revoke(*, key: IngestionKey) -> IngestionKey:
    key.revoke()
    return key


# --- webhooks -------------------------------------------------------------------------------------------------------


def webhook_endpoint_create(
    *, organization: Organization, url: str, description: str = "", events: Sequence[str] = WEBHOOK_EVENTS
) -> tuple[WebhookEndpoint, str]:
    """Returns the endpoint and its signing secret (shown once)."""
    from .webhooks import webhook_url_problem

    problem = webhook_url_problem(url)
    if problem:
        raise ValidationError({"url": [problem]})
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if unknown or not events:
        raise ValidationError({"events": [f"Choose from: {', '.join(WEBHOOK_EVENTS)}."]})
    return WebhookEndpoint.issue(
        secret_for=signing.webhook_secret,
        organization=organization,
        url=url,
        description=description,
        events=sorted(events),
    )


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, data: dict) -> WebhookEndpoint:
    from .webhooks import webhook_url_problem

    if "url" in data:
        problem = webhook_url_problem(data["url"])
        if problem:
            raise ValidationError({"url": [problem]})
    endpoint.change(data)
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


# --- work orders: open -> acknowledged -> closed --------------------------------------------------------------------


class WorkOrderTransitionRefused(Exception):
    pass


_ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    WorkOrder.Status.ACKNOWLEDGED: (WorkOrder.Status.OPEN,),
    WorkOrder.Status.CLOSED: (WorkOrder.Status.OPEN, WorkOrder.Status.ACKNOWLEDGED),
}


def _work_order_move(*, work_order: WorkOrder, to: str, fields: dict) -> WorkOrder:
    # One conditional UPDATE: two people acknowledging at once cannot both succeed.
    moved = WorkOrder.objects.filter(pk=work_order.pk, status__in=_ALLOWED_FROM[to]).update(status=to, **fields)
    work_order.refresh_from_db()
    if not moved:
        raise WorkOrderTransitionRefused(
            f"The work order is {work_order.status}; it can be {to} only when {' or '.join(_ALLOWED_FROM[to])}."
        )
    return work_order


def work_order_acknowledge(*, work_order: WorkOrder, actor: Actor) -> WorkOrder:
    return _work_order_move(
        work_order=work_order,
        to=WorkOrder.Status.ACKNOWLEDGED,
        fields={"acknowledged_at": timezone.now(), "acknowledged_by": actor.label},
    )


def work_order_close(*, work_order: WorkOrder, actor: Actor, resolution: str = "") -> WorkOrder:
    return _work_order_move(
        work_order=work_order,
        to=WorkOrder.Status.CLOSED,
        fields={"closed_at": timezone.now(), "closed_by": actor.label, "resolution": resolution},
    )


def work_order_open(
    *,
    asset: Asset,
    component: str,
    actor: Actor,
    action: str = Recommendation.Action.INSPECT,
    priority: str = Recommendation.Priority.MEDIUM,
    due_by: datetime | None = None,
    reason: str = "",
) -> WorkOrder:
    """Open a work order by hand (not from a model's recommendation): a recommendation that records who asked
    and why, and its open work order. `conservative_rul` is the asset's latest low RUL when it has one, else 0."""
    if action not in Recommendation.Action.values:
        raise ValidationError({"action": [f"One of {', '.join(Recommendation.Action.values)}."]})
    if priority not in Recommendation.Priority.values:
        raise ValidationError({"priority": [f"One of {', '.join(Recommendation.Priority.values)}."]})
    component = component.strip()[:100]
    if not component:
        raise ValidationError({"component": ["Name the component."]})
    health = asset.health.order_by("-created_at").first()
    with transaction.atomic():
        recommendation = Recommendation.objects.create(
            organization_id=asset.organization_id,
            asset=asset,
            health=health,
            action=action,
            component=component,
            due_by=due_by or timezone.now() + timedelta(days=1),
            priority=priority,
            conservative_rul=float(health.rul_low or 0.0) if health is not None else 0.0,
            reason=(reason.strip() or f"Opened by {actor.label}.")[:2000],
            explanation_status=Recommendation.ExplanationStatus.FAILED,
            explanation_error="Opened by hand; no model explanation.",
        )
        return WorkOrder.objects.create(
            organization_id=asset.organization_id, asset=asset, recommendation=recommendation
        )


# --- jobs -----------------------------------------------------------------------------------------------------------


def training_start(
    *, organization: Organization, asset_type: AssetType, actor: Actor | None, asset_codes: Sequence[str] | None = None
) -> Job:
    """Train an RUL model for the asset type from its run-to-failure histories (all, or the named assets')."""
    if asset_type.organization_id != organization.pk:
        raise ValidationError({"asset_type": ["No such asset type."]})
    params: dict = {"asset_type_id": str(asset_type.pk), "asset_type": asset_type.code}
    if asset_codes is not None:
        known = set(Asset.objects.filter(asset_type=asset_type, code__in=asset_codes).values_list("code", flat=True))
        missing = sorted(set(asset_codes) - known)
        if missing:
            raise ValidationError({"assets": [f"No {asset_type.code} asset with the code {c!r}." for c in missing]})
        params["assets"] = sorted(set(asset_codes))
    quota_check(organization=organization, meter="maintenance.model_runs", quantity=1)
    return job_create(organization=organization, kind=TRAIN_JOB_KIND, params=params, actor=actor)


def scoring_start(*, organization: Organization, asset_type: AssetType, actor: Actor | None) -> Job:
    """Score every asset of the type on its telemetry so far: health, RUL, anomalies, recommendations."""
    if asset_type.organization_id != organization.pk:
        raise ValidationError({"asset_type": ["No such asset type."]})
    if not TrainedModel.objects.filter(asset_type=asset_type, is_current=True).exists():
        raise ValidationError({"asset_type": [f"{asset_type.code} has no trained model yet; train one first."]})
    quota_check(organization=organization, meter="maintenance.model_runs", quantity=1)
    return job_create(
        organization=organization,
        kind=SCORE_JOB_KIND,
        params={"asset_type_id": str(asset_type.pk), "asset_type": asset_type.code},
        actor=actor,
    )


def scoring_enqueue_due() -> int:
    """The periodic task: one scoring job per asset type with a current model, unless one is already waiting or
    running (a slow scoring never piles up behind itself)."""
    started = 0
    for model in TrainedModel.objects.filter(is_current=True).select_related("asset_type__organization"):
        asset_type = model.asset_type
        if not asset_type.organization.is_active:
            continue
        busy = Job.objects.filter(
            organization_id=asset_type.organization_id,
            kind=SCORE_JOB_KIND,
            status__in=[Job.Status.QUEUED, Job.Status.RUNNING],
            params__asset_type_id=str(asset_type.pk),
        ).exists()
        if not busy:
            scoring_start(organization=asset_type.organization, asset_type=asset_type, actor=None)
            started += 1
    return started
