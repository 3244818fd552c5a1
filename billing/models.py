import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .meters import METER_CHOICES, SizeClass


class Plan(models.Model):
    """A price list operators edit in the admin. Invoices keep a snapshot, so editing never changes the past."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    currency = models.CharField(max_length=3, default="eur", help_text="ISO 4217, lower case, as Stripe wants it.")
    monthly_fee = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    allowed_size_classes = ArrayField(
        models.CharField(max_length=16, choices=SizeClass.choices),
        default=list,
        help_text="Base-model size classes this plan may use.",
    )
    is_active = models.BooleanField(default=True, help_text="Inactive plans cannot be chosen for subscriptions.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("monthly_fee", "code")

    def __str__(self) -> str:
        return self.name


def validate_tiers(tiers) -> None:
    """Graduated tiers over the overage: ascending `up_to` bounds, the last one open (`null`), prices >= 0."""
    if not isinstance(tiers, list):
        raise ValidationError('Tiers are a list of {"up_to": int or null, "unit_price": "decimal"}.')
    previous = 0
    for position, tier in enumerate(tiers):
        if not isinstance(tier, dict) or set(tier) != {"up_to", "unit_price"}:
            raise ValidationError(f"Tier {position + 1} needs exactly up_to and unit_price.")
        try:
            price = Decimal(str(tier["unit_price"]))
        except ArithmeticError:
            raise ValidationError(f"Tier {position + 1}: unit_price is not a decimal number.") from None
        if not price.is_finite() or price < 0:
            raise ValidationError(f"Tier {position + 1}: unit_price must be zero or more.")
        up_to = tier["up_to"]
        last = position == len(tiers) - 1
        if up_to is None:
            if not last:
                raise ValidationError("Only the last tier may be open-ended (up_to null).")
        elif not isinstance(up_to, int) or isinstance(up_to, bool) or up_to <= previous:
            raise ValidationError(f"Tier {position + 1}: up_to must be a whole number above {previous}.")
        elif last:
            raise ValidationError("The last tier must be open-ended (up_to null), so every unit has a price.")
        else:
            previous = up_to


class PlanMeterPrice(models.Model):
    """One meter on one plan: what is included, the hard limit per period, and the price of what goes beyond."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="meter_prices")
    meter = models.CharField(max_length=64, choices=METER_CHOICES)
    included_quantity = models.BigIntegerField(default=0)
    hard_limit = models.BigIntegerField(null=True, blank=True, help_text="Most units per period; empty means no limit.")
    tiers = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_tiers],
        help_text='Overage beyond the included quantity, e.g. [{"up_to": 1000000, '
        '"unit_price": "0.000002"}, {"up_to": null, "unit_price": "0.0000015"}].',
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["plan", "meter"], name="one_price_per_meter_per_plan"),
            models.CheckConstraint(condition=models.Q(included_quantity__gte=0), name="included_not_negative"),
            models.CheckConstraint(
                condition=models.Q(hard_limit__isnull=True) | models.Q(hard_limit__gte=0),
                name="hard_limit_not_negative",
            ),
        ]
        ordering = ("meter",)

    def __str__(self) -> str:
        return f"{self.plan.code} {self.meter}"


class Subscription(models.Model):
    """An organisation's plan and where its billing stands. Created lazily (`services.subscription_for`)."""

    class Status(models.TextChoices):
        TRIALING = "trialing", _("Trialing (no invoice paid yet)")
        ACTIVE = "active", _("Active")
        PAST_DUE = "past_due", _("Past due")
        CANCELED = "canceled", _("Canceled")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.OneToOneField("tenants.Organization", on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRIALING, db_index=True)
    # Periods are calendar months (UTC); the current one is the next to be invoiced.
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    grace_period_ends_at = models.DateTimeField(null=True, blank=True)
    # Set only when billing suspended the organisation, so a payment lifts our suspension and no one else's.
    suspended_for_billing_at = models.DateTimeField(null=True, blank=True)
    stripe_customer_id = models.CharField(max_length=64, blank=True)
    stripe_subscription_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["current_period_end"])]

    def __str__(self) -> str:
        return f"{self.organization} on {self.plan} ({self.status})"


class QuotaOverride(models.Model):
    """An operator's per-organisation hard limit for one meter, replacing the plan's. Takes effect at once."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    meter = models.CharField(max_length=64, choices=METER_CHOICES)
    hard_limit = models.BigIntegerField(null=True, blank=True, help_text="Empty means no limit.")
    reason = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "meter"], name="one_override_per_meter")]

    def __str__(self) -> str:
        return f"{self.organization} {self.meter} <= {self.hard_limit if self.hard_limit is not None else 'any'}"


class UsageEvent(models.Model):
    """The ledger: one row per billable event, written only by the flusher, never updated or deleted.

    A database trigger refuses UPDATE and DELETE. Corrections are new events with negative quantities and a
    reason. The idempotency key is unique per organisation, so a retried or re-delivered event counts once.
    """

    id = models.BigAutoField(primary_key=True)
    # No index of its own: both composite indexes below lead with it, and every index slows ingestion. No
    # database constraint either: the flusher inserts only rows whose organisation exists, PROTECT keeps an
    # organisation with usage from being deleted, and a per-row check at commit cost a third of ingestion.
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    meter = models.CharField(max_length=64, choices=METER_CHOICES)
    quantity = models.BigIntegerField()
    idempotency_key = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(db_default=Now())
    attributes = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "idempotency_key"], name="ledger_idempotency_key"),
            models.CheckConstraint(condition=~models.Q(quantity__lt=0, reason=""), name="ledger_negative_needs_reason"),
        ]
        indexes = [models.Index(fields=["organization", "occurred_at"], name="ledger_org_occurred")]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.meter} {self.quantity:+d}"


class Credit(models.Model):
    """An operator's credit: recorded as a negative ledger event on one meter, with the reason given here."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.PROTECT, related_name="+")
    meter = models.CharField(max_length=64, choices=METER_CHOICES)
    quantity = models.PositiveBigIntegerField(help_text="Units given back this period.")
    reason = models.CharField(max_length=200)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"credit of {self.quantity} {self.meter} to {self.organization}"


class Invoice(models.Model):
    """One closed period of one organisation: its lines, the plan snapshot and usage it was rated from."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft (not yet with Stripe)")
        OPEN = "open", _("Open (awaiting payment)")
        PAID = "paid", _("Paid")
        PAYMENT_FAILED = "payment_failed", _("Payment failed")
        VOID = "void", _("Void")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.PROTECT, related_name="+")
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="invoices")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    currency = models.CharField(max_length=3)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    plan_snapshot = models.JSONField()
    usage = models.JSONField(help_text="Ledger totals per meter for the period when it was rated.")
    stripe_invoice_id = models.CharField(max_length=64, blank=True)
    stripe_total = models.BigIntegerField(null=True, blank=True, help_text="Minor units, as Stripe last reported.")
    payment_failed_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "period_start"], name="one_invoice_per_period"),
            models.UniqueConstraint(
                fields=["stripe_invoice_id"],
                condition=~models.Q(stripe_invoice_id=""),
                name="one_invoice_per_stripe_invoice",
            ),
        ]
        indexes = [models.Index(fields=["organization", "-created_at"])]
        ordering = ("-period_start",)

    def __str__(self) -> str:
        return f"{self.organization} {self.period_start:%Y-%m} {self.total} {self.currency.upper()} ({self.status})"


class InvoiceLine(models.Model):
    class Kind(models.TextChoices):
        FEE = "fee", _("Monthly fee")
        USAGE = "usage", _("Usage beyond the included quantity")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    meter = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=250)
    quantity = models.BigIntegerField()
    unit_price = models.DecimalField(max_digits=20, decimal_places=10)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    stripe_invoice_item_id = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["invoice", "position"], name="one_line_per_position")]
        ordering = ("invoice", "position")

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


class StripeEvent(models.Model):
    """Every Stripe webhook event we accepted, once: the primary key is Stripe's event id."""

    id = models.CharField(max_length=255, primary_key=True)
    type = models.CharField(max_length=100, db_index=True)
    object_id = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(help_text="When Stripe created the event.")
    received_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=250, blank=True)

    class Meta:
        ordering = ("-received_at",)

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class ReconciliationReport(models.Model):
    """One run comparing the ledger with what the gateway saw and with Stripe's invoice totals."""

    id = models.BigAutoField(primary_key=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    organizations_checked = models.PositiveIntegerField(default=0)
    invoices_checked = models.PositiveIntegerField(default=0)
    differences = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        state = f"{len(self.differences)} difference(s)" if self.differences else "clean"
        return f"{self.period_start:%Y-%m} checked at {self.created_at:%Y-%m-%d %H:%M}: {state}"

    @property
    def is_clean(self) -> bool:
        return not self.differences
