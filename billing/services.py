"""Writes for subscriptions, quota overrides and credits, and the billing side of suspension.

A subscription's status is derived from its invoices (`subscription_refresh_status`), never set from a single
event, so webhooks arriving twice or out of order, and the close job racing them, all converge on one answer.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from foundation.invalidation import publish_invalidation
from foundation.redis import get_redis
from tenants.actor import Actor
from tenants.audit import audit_record
from tenants.models import AuditEvent, Organization
from tenants.services import organization_reactivate, organization_suspend

from . import keys, stripe_api
from .catalogue import catalogue_seed
from .meters import meter_get
from .models import Credit, Invoice, Plan, PlanMeterPrice, QuotaOverride, Subscription
from .periods import period_containing
from .usage import usage_record

logger = logging.getLogger(__name__)
Status = Subscription.Status


def entitlement_changed(*, organization_id) -> None:
    """Drop the cached entitlement once the change commits, so the next reservation reads the new limits.

    Gateway processes keep their own copy in memory: they drop it when the invalidation is published, which
    happens after the shared copy is gone (on_commit callbacks run in order), so they cannot reload the old one.
    """
    transaction.on_commit(lambda: get_redis().delete(keys.entitlement(str(organization_id))))
    publish_invalidation(kind="entitlement", organization_id=organization_id)


def plan_entitlements_refresh(*, plan: Plan) -> None:
    """An operator edited a plan: every organisation on it reads the new limits at its next reservation."""
    for organization_id in Subscription.objects.filter(plan=plan).values_list("organization_id", flat=True):
        entitlement_changed(organization_id=organization_id)


def _default_plan() -> Plan:
    plan = Plan.objects.filter(code=settings.BILLING_DEFAULT_PLAN).first()
    if plan is None:
        catalogue_seed(Plan, PlanMeterPrice)
        plan = Plan.objects.get(code=settings.BILLING_DEFAULT_PLAN)
    return plan


def subscription_for(*, organization: Organization, now: datetime | None = None) -> Subscription:
    """The organisation's subscription; a trialing one on the default plan the first time it is needed.

    Created here rather than with the organisation, because tenants may not import billing.
    """
    existing = Subscription.objects.select_related("plan", "organization").filter(organization=organization).first()
    if existing is not None:
        return existing
    period = period_containing(now or timezone.now())
    try:
        with transaction.atomic():
            return Subscription.objects.create(
                organization=organization,
                plan=_default_plan(),
                current_period_start=period.start,
                current_period_end=period.end,
            )
    except IntegrityError:  # created concurrently
        return Subscription.objects.select_related("plan", "organization").get(organization=organization)


def subscription_change_plan(*, subscription: Subscription, plan: Plan, actor: Actor) -> Subscription:
    """Limits change at once; the open period is invoiced on the plan it has when it closes."""
    if not plan.is_active:
        raise ValidationError({"plan": [f"The {plan.name} plan is not offered any more."]})
    previous = subscription.plan
    with transaction.atomic():
        subscription.plan = plan
        subscription.save(update_fields=["plan", "updated_at"])
        audit_record(
            action=AuditEvent.Action.PLAN_CHANGED,
            target=subscription,
            metadata={"from": previous.code, "to": plan.code},
            **actor.audit_kwargs(),
        )
        entitlement_changed(organization_id=subscription.organization_id)
    return subscription


def payment_method_add(*, subscription: Subscription, setup_intent_id: str, actor: Actor) -> dict:
    """The card Stripe.js collected for this organisation (through a SetupIntent) becomes its default."""
    try:
        card = stripe_api.payment_method_from_setup_intent(subscription=subscription, setup_intent_id=setup_intent_id)
    except ValueError as exc:
        raise ValidationError({"setup_intent": [str(exc)]}) from exc
    audit_record(
        action=AuditEvent.Action.PAYMENT_METHOD_SET,
        target=subscription,
        metadata={"brand": card.get("brand"), "last4": card.get("last4")},
        **actor.audit_kwargs(),
    )
    return card


def subscription_extend_grace(
    *, subscription: Subscription, days: int, actor: Actor, now: datetime | None = None
) -> Subscription:
    """Give a past-due organisation more time; lifts a billing suspension if the new end is in the future."""
    now = now or timezone.now()
    if subscription.status != Status.PAST_DUE:
        raise ValidationError({"status": ["Only a past-due subscription has a grace period to extend."]})
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        subscription.grace_period_ends_at = max(subscription.grace_period_ends_at or now, now) + timedelta(days=days)
        subscription.save(update_fields=["grace_period_ends_at", "updated_at"])
        audit_record(
            action=AuditEvent.Action.GRACE_EXTENDED,
            target=subscription,
            metadata={"days": days, "until": subscription.grace_period_ends_at.isoformat()},
            **actor.audit_kwargs(),
        )
        entitlement_changed(organization_id=subscription.organization_id)
        _lift_billing_suspension(subscription)
    return subscription


def quota_override_set(
    *, organization: Organization, meter: str, hard_limit: int | None, reason: str, actor: Actor
) -> QuotaOverride:
    meter_get(meter)
    with transaction.atomic():
        override, _ = QuotaOverride.objects.update_or_create(
            organization=organization,
            meter=meter,
            defaults={
                "hard_limit": hard_limit,
                "reason": reason,
                "created_by": actor.user,
                "created_at": timezone.now(),
            },
        )
        audit_record(
            action=AuditEvent.Action.QUOTA_OVERRIDE_SET,
            target=override,
            metadata={"meter": meter, "hard_limit": hard_limit, "reason": reason},
            **actor.audit_kwargs(),
        )
        entitlement_changed(organization_id=organization.pk)
    return override


def quota_override_remove(*, override: QuotaOverride, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(
            action=AuditEvent.Action.QUOTA_OVERRIDE_REMOVED,
            target=override,
            metadata={"meter": override.meter},
            **actor.audit_kwargs(),
        )
        override.delete()
        entitlement_changed(organization_id=override.organization_id)


def credit_issue(*, organization: Organization, meter: str, quantity: int, reason: str, actor: Actor) -> Credit:
    """A credit is a correction in the ledger: a negative event on the meter, keyed by the credit's id."""
    meter_get(meter)
    if quantity <= 0 or not reason:
        raise ValidationError({"quantity": ["A credit needs a positive quantity and a reason."]})
    with transaction.atomic():
        credit = Credit.objects.create(
            organization=organization, meter=meter, quantity=quantity, reason=reason, issued_by=actor.user
        )
        audit_record(
            action=AuditEvent.Action.CREDIT_ISSUED,
            target=credit,
            metadata={"meter": meter, "quantity": quantity, "reason": reason},
            **actor.audit_kwargs(),
        )
        transaction.on_commit(
            lambda: usage_record(
                organization_id=organization.pk,
                meter=meter,
                quantity=-quantity,
                idempotency_key=f"credit:{credit.pk}",
                reason=f"Credit: {reason}"[:200],
                attributes={"credit_id": str(credit.pk)},
            )
        )
    return credit


def _lift_billing_suspension(subscription: Subscription) -> None:
    """Reactivate the organisation if billing (and nobody else) suspended it."""
    if subscription.suspended_for_billing_at is None:
        return
    organization = Organization.objects.get(pk=subscription.organization_id)
    organization_reactivate(organization=organization, actor=Actor.system(organization=organization))
    Subscription.objects.filter(pk=subscription.pk).update(suspended_for_billing_at=None)
    subscription.suspended_for_billing_at = None


def subscription_refresh_status(*, subscription: Subscription) -> Subscription:
    """Derive the status from the invoices: any failed one makes it past due, otherwise a paid one active."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if subscription.status == Status.CANCELED:
            return subscription
        invoices = Invoice.objects.filter(subscription=subscription)
        oldest_failure = (
            invoices.filter(status=Invoice.Status.PAYMENT_FAILED)
            .order_by("payment_failed_at")
            .values_list("payment_failed_at", flat=True)
            .first()
        )
        status: str
        if oldest_failure is not None:
            status = Status.PAST_DUE
            # A grace period already running (perhaps extended by an operator) keeps its end.
            grace = subscription.grace_period_ends_at or oldest_failure + timedelta(days=settings.BILLING_GRACE_DAYS)
        elif invoices.filter(status=Invoice.Status.PAID).exists():
            status, grace = Status.ACTIVE, None
        else:
            status, grace = subscription.status, None
        if (status, grace) != (subscription.status, subscription.grace_period_ends_at):
            logger.info("Subscription of %s: %s -> %s", subscription.organization_id, subscription.status, status)
            subscription.status, subscription.grace_period_ends_at = status, grace
            subscription.save(update_fields=["status", "grace_period_ends_at", "updated_at"])
            entitlement_changed(organization_id=subscription.organization_id)
        if status != Status.PAST_DUE:
            _lift_billing_suspension(subscription)
    return subscription


def subscriptions_suspend_overdue(*, now: datetime | None = None) -> int:
    """Suspend the organisations whose grace period ended with an invoice still unpaid."""
    now = now or timezone.now()
    suspended = 0
    overdue = Subscription.objects.filter(
        status=Status.PAST_DUE, grace_period_ends_at__lte=now, suspended_for_billing_at__isnull=True
    ).select_related("organization")
    for subscription in overdue:
        organization = subscription.organization
        if not organization.is_active:
            continue  # suspended by an operator: not ours to lift later
        with transaction.atomic():
            organization_suspend(
                organization=organization,
                actor=Actor.system(organization=organization),
                reason=f"Unpaid invoice: the grace period ended {subscription.grace_period_ends_at:%Y-%m-%d}",
            )
            Subscription.objects.filter(pk=subscription.pk).update(suspended_for_billing_at=now)
        entitlement_changed(organization_id=organization.pk)
        suspended += 1
    return suspended
