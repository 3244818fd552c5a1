"""The billing API: usage against quota, the running estimate and past invoices, for the `billing` scope only."""

from decimal import Decimal

import pytest

from billing.ledger import ledger_flush
from billing.services import quota_override_set
from tenants.roles import Role, Scope
from tests import builders
from tests.billing.helpers import close_period, on_plan, use

pytestmark = pytest.mark.django_db

METER = "maintenance.model_runs"


@pytest.fixture
def owner_client(org):
    return builders.session_client(org.memberships.get(role=Role.OWNER).user)


def test_usage_shows_this_months_ledger_against_included_and_limits(org, owner_client):
    """Catches usage that is not the ledger's, or limits that ignore an operator's override."""
    use(org, METER, 150)
    use(org, METER, 50)
    ledger_flush()
    quota_override_set(
        organization=org, meter=METER, hard_limit=10_000, reason="pilot", actor=builders.owner_actor(org)
    )
    body = owner_client.get(f"/api/v1/orgs/{org.slug}/billing/usage").json()
    assert (body["plan"], body["status"]) == ("Starter", "trialing")
    runs = next(m for m in body["meters"] if m["meter"] == METER)
    assert runs == {"meter": METER, "unit": "run", "used": 200, "included": 100, "limit": 10_000, "remaining": 9_800}
    assert body["period_end"] > body["period_start"]


def test_the_estimate_rates_the_ledger_so_far(org, owner_client):
    """Catches an estimate computed differently from the invoice it predicts."""
    on_plan(org, "pro")
    use(org, "optimization.solver_seconds", 36_000 + 2_000)  # 2,000 s beyond Pro's included at 0.0015
    ledger_flush()
    body = owner_client.get(f"/api/v1/orgs/{org.slug}/billing/estimate").json()
    assert (body["currency"], body["total"]) == ("eur", "502.00")
    assert [(line["kind"], line["quantity"], line["amount"]) for line in body["lines"]] == [
        ("fee", 1, "499.00"),
        ("usage", 2_000, "3.00"),
    ]


def test_past_invoices_list_with_their_lines_by_cursor(org, owner_client, stripe_settings):
    """Catches invoices without lines, offset pagination, or amounts as floats."""
    use(org, METER, 100)
    invoice = close_period(org)
    page = owner_client.get(f"/api/v1/orgs/{org.slug}/billing/invoices?page_size=1").json()
    assert set(page) == {"next", "previous", "results"}
    [listed] = page["results"]
    assert listed["id"] == str(invoice.pk) and listed["total"] == "0.00" and listed["status"] == "paid"
    assert listed["lines"][0]["kind"] == "fee"
    detail = owner_client.get(f"/api/v1/orgs/{org.slug}/billing/invoices/{invoice.pk}").json()
    assert Decimal(detail["total"]) == invoice.total


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_members_without_the_billing_scope_are_refused(org, role):
    """Catches usage and invoices shown to roles that may not see money."""
    client = builders.session_client(builders.add_member(org, role))
    for path in ("usage", "estimate", "invoices"):
        response = client.get(f"/api/v1/orgs/{org.slug}/billing/{path}")
        assert response.status_code == 403 and "billing" in response.json()["error"]["message"]


def test_an_api_key_needs_the_billing_scope(org):
    """Catches keys without the scope reading billing, and keys with it being refused."""
    _, without = builders.make_key(org, scopes=[Scope.ORG_READ])
    _, with_scope = builders.make_key(org, scopes=[Scope.BILLING])
    url = f"/api/v1/orgs/{org.slug}/billing/usage"
    assert builders.key_client(without).get(url).status_code == 403
    assert builders.key_client(with_scope).get(url).status_code == 200
