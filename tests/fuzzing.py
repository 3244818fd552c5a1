"""Fuzzing the served OpenAPI documents with schemathesis, as every role, against a real server.

`fuzz_world()` seeds one organisation through the real services (a user per role with a user token, an API key
with every scope, and one object behind each kind of path parameter), so generated paths resolve instead of
answering 404. `fuzz(...)` draws `max_examples` cases per operation with schemathesis' positive and negative
generation, fills the path parameters it knows from the world, sends each case once per caller and records every
failure of the checks: no server error (5xx; 503 only with the error shape and `Retry-After`), every answer that the
schema documents valid against the schema, and the documented content type.

The tests run it bounded (tests/controlplane/test_fuzz_api.py); benchmarks/fuzz_api.py runs it long.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@dataclass
class FuzzWorld:
    org_slug: str
    callers: dict[str, dict[str, str]]
    # path parameter name -> a value that exists, by operation path prefix when the name alone is ambiguous
    values: dict[str, list[tuple[str, str]]]
    # Issues fresh credentials: a fuzzed sign-out, password reset or key revocation must not blind what follows.
    refresh: Callable[[], None] = lambda: None

    def fill(self, path: str, parameters: dict) -> dict:
        filled = dict(parameters)
        for name in parameters:
            if name == "org_slug":
                filled[name] = self.org_slug
                continue
            for prefix, value in self.values.get(name, []):
                if prefix in path:
                    filled[name] = value
                    break
        return filled


@dataclass
class FuzzReport:
    operations: int = 0
    cases: int = 0
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def unique_failures(self) -> list[str]:
        return sorted(set(self.failures))


def fuzz_world() -> FuzzWorld:
    """One organisation with a user per role, each with a bearer token, an API key and one object of each kind."""
    from django.utils import timezone

    import tests.jobs.sample_jobs  # noqa: F401  (registers the test job kind)
    from automation.maintenance import services as maintenance
    from automation.scheduling.models import Machine
    from jobs.services import job_create
    from tenants import services
    from tenants.roles import ALL_SCOPES, Role
    from tests import builders

    tag = random.randrange(10**8)  # a benchmark database outlives one run: fresh names every time
    owner = builders.make_user(f"owner-{tag}@example.com")
    org = builders.make_org(owner=owner, slug=f"fuzz-{tag}")
    users = {"owner": owner}
    for role in (Role.ADMIN, Role.MEMBER, Role.VIEWER):
        users[str(role)] = builders.add_member(org, role, user=builders.make_user(f"{role}-{tag}@example.com"))
    callers: dict[str, dict[str, str]] = {}

    def refresh() -> None:
        for role, user in users.items():
            _, token = services.user_token_create(user=user)
            callers[role] = {"Authorization": f"Bearer {token}"}
        _, plaintext = builders.make_key(org, scopes=ALL_SCOPES)
        callers["api_key"] = {"Authorization": f"Bearer {plaintext}"}

    refresh()
    key = org.api_keys.get()

    actor = builders.owner_actor(org)
    job = job_create(organization=org, kind="test.count", params={}, actor=actor)
    member = org.memberships.get(user=users["member"])
    invitation, _ = services.invitation_create(
        organization=org, email="invitee@example.com", role=Role.VIEWER, actor=actor
    )
    asset_type = maintenance.asset_type_create(
        organization=org, code="pump", channels=[{"name": "vibration", "unit": "mm/s"}]
    )
    asset = maintenance.asset_create(organization=org, code="P-1", asset_type=asset_type)
    machine = Machine.objects.create(organization=org, code="M1", name="Mill")
    event = maintenance.asset_event_create(organization=org, asset=asset, kind="inspection", occurred_at=timezone.now())
    ingestion_key, _ = maintenance.ingestion_key_create(organization=org, name="plc", asset=asset)
    export = job_create(organization=org, kind="organization.export", params={}, actor=actor)
    audit_event = org.audit_events.first()
    assert audit_event is not None, "creating the world writes audit events"
    values = {
        "id": [
            ("/members/", str(member.pk)),
            ("/invitations/", str(invitation.pk)),
            ("/api-keys/", str(key.pk)),
            ("/jobs/", str(job.pk)),
            ("/data-exports/", str(export.pk)),
            ("/audit-events/", str(audit_event.pk)),
            ("/maintenance/events/", str(event.pk)),
            ("/ingestion-keys/", str(ingestion_key.pk)),
            ("/asset-types/", str(asset_type.pk)),
            ("/assets/", str(asset.pk)),
            ("/machines/", str(machine.pk)),
        ],
    }
    return FuzzWorld(org_slug=org.slug, callers=callers, values=values, refresh=refresh)


def _allowed_503(response) -> bool:
    """A deliberate 503 (no capacity, a dependency away) is an answer, not a crash, when it says so properly."""
    return response.status_code == 503 and "retry-after" in {k.lower() for k in response.headers}


def fuzz(
    schema,
    world: FuzzWorld,
    *,
    max_examples: int,
    seed: int = 0,
    roles: list[str] | None = None,
    skip=(),
) -> FuzzReport:
    report = FuzzReport()
    roles = roles or list(world.callers)
    for result in schema.get_all_operations():
        operation: Any = result.ok()  # schemathesis types it as object
        if any(s in operation.label for s in skip):
            continue
        report.operations += 1
        world.refresh()
        strategy = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        _case_runner(operation, strategy, world, report, roles, max_examples, seed)()
    return report


def _case_runner(operation, strategy, world, report, roles, max_examples, seed) -> Callable[[], None]:
    """Draw the cases with hypothesis, then send them outside it: a failure is recorded, never shrunk or raised."""
    cases = []

    @hypothesis.given(case=strategy)
    @hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.seed(seed)
    def draw(case):
        cases.append(case)

    def run():
        draw()
        for case in cases:
            report.cases += 1
            case.path_parameters = world.fill(operation.path, case.path_parameters or {})
            for role in roles:
                case.headers = {**(case.headers or {}), **world.callers[role]}
                response = case.call(timeout=60)
                report.requests += 1
                report.statuses[response.status_code] += 1
                if _allowed_503(response):
                    continue
                try:
                    case.validate_response(response, checks=CHECKS)
                except (Exception, BaseExceptionGroup) as exc:  # recorded; none stops the run
                    first = " ".join(str(exc).strip().splitlines()[0:3])
                    report.failures.append(f"{operation.label} as {role} -> {response.status_code}: {first}")

    return run


def load(url: str):
    return schemathesis.openapi.from_url(url)
