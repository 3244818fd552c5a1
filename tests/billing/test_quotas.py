"""Quotas at the point where work is accepted: refusals with 429 and a useful message, no overshoot under
concurrency, operators' overrides at once, counters that survive a Redis restart."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.urls import path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.errors import QuotaExceeded
from billing.ledger import ledger_flush
from billing.models import QuotaOverride
from billing.periods import period_containing
from billing.quotas import quota_reserve
from billing.services import quota_override_set, subscription_for
from billing.usage import usage_observed
from foundation.redis import get_redis
from tenants.models import User
from tenants.roles import Scope
from tenants.scoping import OrganizationScopedViewMixin
from tests import builders
from tests.billing.helpers import use

METER = "inference.output_tokens.small"
STARTER_LIMIT = 5_000_000  # the seeded Starter plan's hard limit for this meter


class CompletionLikeView(OrganizationScopedViewMixin, APIView):
    """Stands in for the gateway: reserve the request's max tokens, do the work, commit what it used."""

    method_scopes = {"POST": Scope.INFERENCE}

    def post(self, request, org_slug):
        reservation = quota_reserve(
            organization=self.organization, meter=request.data["meter"], quantity=request.data["max_tokens"]
        )
        reservation.commit(request.data["max_tokens"])
        return Response({"warning": reservation.warning})


urlpatterns = [path("orgs/<slug:org_slug>/completions", CompletionLikeView.as_view(), name="test-completions")]


@pytest.fixture
def completions(db, settings, org):
    settings.ROOT_URLCONF = __name__
    _, plaintext = builders.make_key(org)
    client = builders.key_client(plaintext)
    return lambda **body: client.post(f"/orgs/{org.slug}/completions", body, format="json")


def test_the_request_that_would_exceed_the_limit_is_refused_with_429_and_says_which_limit_and_when(completions):
    """Catches a quota that lets the crossing request through, or a refusal that does not explain itself."""
    assert completions(meter=METER, max_tokens=STARTER_LIMIT - 10).status_code == 200
    refused = completions(meter=METER, max_tokens=11)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert f"{METER}" in error["message"] and "5,000,000" in error["message"] and "Starter" in error["message"]
    assert "resets at" in error["message"] and "-01 00:00 UTC" in error["message"]
    assert int(refused["Retry-After"]) > 0
    assert completions(meter=METER, max_tokens=10).status_code == 200  # exactly up to the limit is fine


def test_a_size_class_outside_the_plan_is_refused_with_403(completions):
    """Catches a Starter organisation reaching large base models."""
    refused = completions(meter="inference.output_tokens.large", max_tokens=1)
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "plan_restriction",
        "message": "The Starter plan does not include large base models.",
    }


@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_cannot_overshoot(org):
    """Catches a check-then-increment race: 16 threads ask for 7 units 20 times each against a limit of 1,000."""
    quota_override_set(organization=org, meter=METER, hard_limit=1_000, reason="test", actor=builders.owner_actor(org))

    def attempt(_) -> int:
        try:
            quota_reserve(organization=org, meter=METER, quantity=7).commit(7)
            return 1
        except QuotaExceeded:
            return 0
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=16) as pool:
        granted = sum(pool.map(attempt, range(16 * 20)))
    assert granted == 1_000 // 7
    assert usage_observed(organization_id=org.pk, period=period_containing(timezone.now())) == {METER: 994}


def test_an_operator_raising_the_limit_in_the_admin_takes_effect_at_once(
    client, org, django_capture_on_commit_callbacks
):
    """Catches an override that waits for a cache to expire while the customer is blocked."""
    quota_reserve(organization=org, meter=METER, quantity=STARTER_LIMIT).commit(STARTER_LIMIT)
    with pytest.raises(QuotaExceeded):
        quota_reserve(organization=org, meter=METER, quantity=1)

    operator = User.objects.create_superuser(email="ops@lightsout.example", password=builders.PASSWORD)
    client.force_login(operator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/billing/quotaoverride/add/",
            {"organization": org.pk, "meter": METER, "hard_limit": STARTER_LIMIT + 1_000, "reason": "Pilot line"},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert QuotaOverride.objects.get().created_by == operator
    quota_reserve(organization=org, meter=METER, quantity=1_000)  # no QuotaExceeded: the new limit applies


def test_a_reservation_released_or_abandoned_gives_its_quantity_back(org):
    """Catches holds that leak: a released reservation, or one whose holder died, must not block others."""
    quota_override_set(organization=org, meter=METER, hard_limit=100, reason="test", actor=builders.owner_actor(org))
    quota_reserve(organization=org, meter=METER, quantity=100).release()
    quota_reserve(organization=org, meter=METER, quantity=100, ttl_seconds=-1)  # its holder "died" at once
    quota_reserve(organization=org, meter=METER, quantity=100).commit(60)
    with pytest.raises(QuotaExceeded):
        quota_reserve(organization=org, meter=METER, quantity=41)


def test_counters_are_seeded_from_the_ledger_after_a_redis_restart(org):
    """Catches quotas that reset to zero when Redis loses its data."""
    subscription_for(organization=org)
    use(org, METER, STARTER_LIMIT - 5)
    ledger_flush()
    get_redis().flushdb()  # Redis restarted without its data
    with pytest.raises(QuotaExceeded) as refused:
        quota_reserve(organization=org, meter=METER, quantity=6)
    assert refused.value.used == STARTER_LIMIT - 5
    quota_reserve(organization=org, meter=METER, quantity=5)
