"""Operators' console for billing: plans, subscriptions, overrides and credits through the services; the ledger,
invoices, Stripe events and reconciliation reports read-only."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError

from tenants.admin import operator

from . import invoicing, services
from .models import (
    Credit,
    Invoice,
    InvoiceLine,
    Plan,
    PlanMeterPrice,
    QuotaOverride,
    ReconciliationReport,
    StripeEvent,
    Subscription,
    UsageEvent,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class PlanMeterPriceInline(admin.TabularInline):
    model = PlanMeterPrice
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "monthly_fee", "currency", "allowed_size_classes", "is_active")
    readonly_fields = ("created_at", "updated_at")
    inlines = (PlanMeterPriceInline,)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # invoices keep snapshots, but subscriptions point at plans: retire one with is_active

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.plan_entitlements_refresh(plan=form.instance)


class SubscriptionActionForm(ActionForm):
    plan = forms.ModelChoiceField(Plan.objects.filter(is_active=True), required=False, help_text="For “Change plan”.")
    days = forms.IntegerField(min_value=1, max_value=90, required=False, help_text="For “Extend grace period”.")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = (
        "organization",
        "plan",
        "status",
        "current_period_start",
        "current_period_end",
        "grace_period_ends_at",
        "suspended_for_billing_at",
    )
    list_filter = ("status", "plan")
    search_fields = ("organization__slug", "organization__name", "stripe_customer_id")
    readonly_fields = [f.name for f in Subscription._meta.fields]
    action_form = SubscriptionActionForm
    actions = ("change_plan", "extend_grace")

    def has_add_permission(self, request) -> bool:
        return False  # created when first needed

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Change plan (choose the plan above)")
    def change_plan(self, request, queryset):
        plan = Plan.objects.filter(pk=request.POST.get("plan") or None).first()
        if plan is None:
            messages.error(request, "Choose the plan to move to.")
            return
        for subscription in queryset.select_related("organization"):
            services.subscription_change_plan(
                subscription=subscription, plan=plan, actor=operator(request, subscription.organization)
            )
        messages.success(request, f"Moved {queryset.count()} subscription(s) to {plan}.")

    @admin.action(description="Extend grace period (enter the days above)")
    def extend_grace(self, request, queryset):
        days = int(request.POST.get("days") or 0)
        if days <= 0:
            messages.error(request, "Enter how many days to add.")
            return
        for subscription in queryset.select_related("organization"):
            try:
                services.subscription_extend_grace(
                    subscription=subscription, days=days, actor=operator(request, subscription.organization)
                )
            except ValidationError as exc:
                messages.warning(request, f"{subscription.organization}: {' '.join(exc.messages)}")


@admin.register(QuotaOverride)
class QuotaOverrideAdmin(admin.ModelAdmin):
    list_display = ("organization", "meter", "hard_limit", "reason", "created_by", "created_at")
    search_fields = ("organization__slug", "meter")
    autocomplete_fields = ("organization",)
    fields = ("organization", "meter", "hard_limit", "reason")
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return ("organization", "meter") if obj else ()

    def save_model(self, request, obj, form, change):
        saved = services.quota_override_set(
            organization=obj.organization,
            meter=obj.meter,
            hard_limit=obj.hard_limit,
            reason=obj.reason,
            actor=operator(request, obj.organization),
        )
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.quota_override_remove(override=obj, actor=operator(request, obj.organization))


@admin.register(Credit)
class CreditAdmin(admin.ModelAdmin):
    list_display = ("organization", "meter", "quantity", "reason", "issued_by", "created_at")
    search_fields = ("organization__slug", "reason")
    autocomplete_fields = ("organization",)
    fields = ("organization", "meter", "quantity", "reason")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a credit is final: correct it with another one

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        credit = services.credit_issue(
            organization=obj.organization,
            meter=obj.meter,
            quantity=obj.quantity,
            reason=obj.reason,
            actor=operator(request, obj.organization),
        )
        obj.pk = credit.pk


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "organization", "meter", "quantity", "idempotency_key", "reason", "recorded_at")
    # The ledger is large: filters from the meter registry, exact-match search, no full count on every page.
    list_filter = ("meter",)
    search_fields = ("=organization__slug", "=idempotency_key")
    show_full_result_count = False


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fields = ("position", "kind", "description", "quantity", "unit_price", "amount", "stripe_invoice_item_id")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = (
        "organization",
        "period_start",
        "total",
        "currency",
        "status",
        "stripe_invoice_id",
        "paid_at",
        "payment_failed_at",
    )
    list_filter = ("status",)
    search_fields = ("organization__slug", "stripe_invoice_id")
    inlines = (InvoiceLineInline,)
    actions = ("retry_payment", "recompute")

    @admin.action(description="Retry the payment through Stripe")
    def retry_payment(self, request, queryset):
        for invoice in queryset.exclude(stripe_invoice_id="").filter(
            status__in=[Invoice.Status.OPEN, Invoice.Status.PAYMENT_FAILED]
        ):
            invoice = invoicing.invoice_collect(invoice=invoice)
            messages.info(request, f"{invoice}: {invoice.get_status_display()}")

    @admin.action(description="Recompute and compare with the ledger")
    def recompute(self, request, queryset):
        for invoice in queryset:
            comparison = invoicing.invoice_recompute(invoice=invoice)
            level = (
                messages.SUCCESS
                if comparison.reproducible and not comparison.late_usage_difference
                else (messages.WARNING)
            )
            messages.add_message(
                request,
                level,
                (
                    f"{invoice}: rating its snapshot again {'gives' if comparison.reproducible else 'does NOT give'} "
                    f"the stored lines; usage that reached the ledger after the close changes the total by "
                    f"{comparison.late_usage_difference} {invoice.currency.upper()}."
                ),
            )


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "object_id", "created", "received_at", "outcome")
    list_filter = ("type",)
    search_fields = ("id", "object_id")


@admin.register(ReconciliationReport)
class ReconciliationReportAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "period_start", "organizations_checked", "invoices_checked", "is_clean")
    readonly_fields = (
        "period_start",
        "period_end",
        "organizations_checked",
        "invoices_checked",
        "differences",
        "created_at",
    )

    @admin.display(boolean=True, description="Clean")
    def is_clean(self, report) -> bool:
        return report.is_clean
