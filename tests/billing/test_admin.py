"""Operators' admin: plans editable with immediate effect, plan changes and credits through the services, the ledger
and invoices read-only."""

import json

import pytest
from django.apps import apps
from django.contrib import admin

from billing.errors import QuotaExceeded
from billing.ledger import ledger_flush
from billing.models import Credit, Plan, Subscription, UsageEvent
from billing.periods import Period
from billing.quotas import quota_reserve
from billing.reconciliation import reconciliation_run
from billing.services import subscription_for
from tenants.models import AuditEvent, User
from tests import builders
from tests.billing.helpers import close_period, use

pytestmark = pytest.mark.django_db

METER = "maintenance.model_runs"


@pytest.fixture
def operator_client(client):
    client.force_login(User.objects.create_superuser(email="ops@lightsout.example", password=builders.PASSWORD))
    return client


def _plan_form(plan: Plan, **changes_by_meter) -> dict:
    prices = list(plan.meter_prices.order_by("pk"))
    data = {
        "code": plan.code,
        "name": plan.name,
        "currency": plan.currency,
        "monthly_fee": str(plan.monthly_fee),
        "allowed_size_classes": ",".join(plan.allowed_size_classes),
        "is_active": "on",
        "meter_prices-TOTAL_FORMS": len(prices),
        "meter_prices-INITIAL_FORMS": len(prices),
        "meter_prices-MIN_NUM_FORMS": 0,
        "meter_prices-MAX_NUM_FORMS": 1000,
    }
    for n, price in enumerate(prices):
        fields = {
            "id": price.pk,
            "plan": plan.pk,
            "meter": price.meter,
            "included_quantity": price.included_quantity,
            "hard_limit": "" if price.hard_limit is None else price.hard_limit,
            "tiers": json.dumps(price.tiers),
            **changes_by_meter.get(price.meter, {}),
        }
        data |= {f"meter_prices-{n}-{name}": value for name, value in fields.items()}
    return data


def test_editing_a_plans_limit_in_the_admin_applies_to_its_organisations_at_once(
    operator_client, org, django_capture_on_commit_callbacks
):
    """Catches plan edits that wait for cached limits to expire, or a plan form that cannot be saved."""
    starter = subscription_for(organization=org).plan
    quota_reserve(organization=org, meter=METER, quantity=2_000).commit(2_000)  # Starter's limit, now cached
    with pytest.raises(QuotaExceeded):
        quota_reserve(organization=org, meter=METER, quantity=1)
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            f"/admin/billing/plan/{starter.pk}/change/", _plan_form(starter, **{METER: {"hard_limit": 3_000}})
        )
    assert response.status_code == 302, response.context["adminform"].form.errors
    quota_reserve(organization=org, meter=METER, quantity=1_000)


def test_a_plan_with_tiers_that_leave_units_unpriced_is_refused(operator_client):
    """Catches a catalogue edit that would make rating fail at the month's close."""
    pro = Plan.objects.get(code="pro")
    bad = [{"up_to": 10, "unit_price": "0.1"}]  # no open-ended last tier
    response = operator_client.post(
        f"/admin/billing/plan/{pro.pk}/change/", _plan_form(pro, **{METER: {"tiers": json.dumps(bad)}})
    )
    assert response.status_code == 200 and "must be open-ended" in response.content.decode()


def test_change_plan_action_moves_the_subscription_and_audits_it(operator_client, org):
    """Catches an admin action that bypasses the service (no audit, stale limits)."""
    subscription = subscription_for(organization=org)
    enterprise = Plan.objects.get(code="enterprise")
    response = operator_client.post(
        "/admin/billing/subscription/",
        {"action": "change_plan", "plan": enterprise.pk, "_selected_action": [subscription.pk]},
    )
    assert response.status_code == 302
    assert Subscription.objects.get(pk=subscription.pk).plan == enterprise
    audit = AuditEvent.objects.get(action="billing.plan_changed")
    assert audit.actor.email == "ops@lightsout.example" and audit.metadata == {"from": "starter", "to": "enterprise"}


def test_issuing_a_credit_records_a_negative_ledger_event_with_the_reason(
    operator_client, org, django_capture_on_commit_callbacks
):
    """Catches credits that change a total without a trace in the ledger, or that lose their reason."""
    use(org, METER, 300)
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            "/admin/billing/credit/add/",
            {"organization": org.pk, "meter": METER, "quantity": 120, "reason": "Sensor outage on line 3"},
        )
    assert response.status_code == 302
    ledger_flush()
    credit = Credit.objects.get()
    correction = UsageEvent.objects.get(quantity__lt=0)
    assert (correction.quantity, correction.reason, correction.idempotency_key) == (
        -120,
        "Credit: Sensor outage on line 3",
        f"credit:{credit.pk}",
    )
    assert sum(UsageEvent.objects.values_list("quantity", flat=True)) == 180


def test_the_ledger_is_read_only_in_the_admin(operator_client, org):
    """Catches an admin form through which someone could edit or delete billing history."""
    use(org, METER, 5)
    ledger_flush()
    event = UsageEvent.objects.get()
    assert operator_client.get("/admin/billing/usageevent/").status_code == 200
    page = operator_client.get(f"/admin/billing/usageevent/{event.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert operator_client.post(f"/admin/billing/usageevent/{event.pk}/change/", {"quantity": 1}).status_code == 403
    assert operator_client.post(f"/admin/billing/usageevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert UsageEvent.objects.get().quantity == 5


def test_every_billing_admin_page_renders(operator_client, org, stripe_settings):
    """Catches an admin misconfiguration (a bad field, a missing search for autocomplete) that only shows in use."""
    use(org, METER, 5)
    invoice = close_period(org)
    reconciliation_run(period=Period(invoice.period_start, invoice.period_end))
    for model in apps.get_app_config("billing").get_models():
        if not admin.site.is_registered(model):
            continue
        base = f"/admin/billing/{model._meta.model_name}/"
        assert operator_client.get(base).status_code == 200, base
        first = model.objects.first()
        if first is not None:
            assert operator_client.get(f"{base}{first.pk}/change/").status_code == 200, base
    for addable in ("quotaoverride", "credit", "plan"):
        assert operator_client.get(f"/admin/billing/{addable}/add/").status_code == 200, addable


def test_recompute_action_reports_late_usage_on_a_read_only_invoice(operator_client, org, stripe_settings):
    """Catches invoice actions lost with the read-only admin, or a recompute that hides a late event."""
    invoice = close_period(org)
    use(org, "training.tokens", 3_000_000, occurred_at=invoice.period_start)  # beyond Starter's 0 included
    ledger_flush()
    response = operator_client.post(
        "/admin/billing/invoice/", {"action": "recompute", "_selected_action": [invoice.pk]}, follow=True
    )
    [message] = [str(m) for m in response.context["messages"]]
    assert "gives the stored lines" in message and "changes the total by 12.00 EUR" in message
