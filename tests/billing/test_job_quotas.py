"""Quotas are enforced where jobs are accepted, before anything is queued."""

import pytest

from billing.services import quota_override_set
from jobs.models import Job
from tenants.roles import Role
from tests import builders

pytestmark = pytest.mark.django_db


def test_a_run_whose_time_budget_exceeds_the_quota_is_refused_and_nothing_is_queued(org):
    """Catches a job API that queues first and meters later, letting an organisation run past its plan."""
    quota_override_set(
        organization=org,
        meter="optimization.solver_seconds",
        hard_limit=30,
        reason="test",
        actor=builders.owner_actor(org),
    )
    client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
    url = f"/api/v1/orgs/{org.slug}/scheduling/runs"
    problem = {"jobshop": {"jobs": [[[0, 3], [1, 2]], [[1, 4], [0, 2]]]}, "objective": "makespan"}
    refused = client.post(url, {**problem, "time_limit_s": 60}, format="json")
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded" and "optimization.solver_seconds" in error["message"]
    assert "resets at" in error["message"] and int(refused["Retry-After"]) > 0
    assert not Job.objects.filter(organization=org).exists()
    accepted = client.post(url, {**problem, "time_limit_s": 20}, format="json")
    assert accepted.status_code == 201
