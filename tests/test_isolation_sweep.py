"""Tenant isolation across every organisation endpoint, present and future."""

import pytest
from django.urls import include, path
from rest_framework import generics

from jobs.models import Job
from jobs.serializers import JobSerializer
from jobs.services import job_create
from tenants.models import AuditEvent, Invitation
from tenants.roles import Role
from tests import builders
from tests.isolation import sweep

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Organisation A with one object of every kind a route can address, and B's callers."""
    import tests.jobs.sample_jobs  # noqa: F401  (registers the test job kind)

    org_a = builders.make_org(slug="alpha-works")
    for role in (Role.ADMIN, Role.MEMBER, Role.VIEWER):
        builders.add_member(org_a, role)
    from tenants import services

    services.invitation_create(organization=org_a, email="pending@example.com", role=Role.MEMBER,
                               actor=builders.owner_actor(org_a))
    key_a, _ = builders.make_key(org_a)
    job_a = job_create(organization=org_a, kind="test.count", params={}, actor=builders.owner_actor(org_a))
    objects_a = [
        org_a, *org_a.memberships.all(), *Invitation.objects.filter(organization=org_a), key_a, job_a,
        *job_a.events.all(), *AuditEvent.objects.filter(organization=org_a),
    ]

    org_b = builders.make_org(slug="bravo-plant")
    owner_b = org_b.memberships.get(role=Role.OWNER).user
    _, plaintext_b = builders.make_key(org_b)
    clients_b = {"B owner (session)": builders.session_client(owner_b), "B key": builders.key_client(plaintext_b)}
    return {"org_a": org_a, "objects_a": objects_a, "org_b": org_b, "clients_b": clients_b}


def test_no_endpoint_leaks_or_accepts_writes_across_organisations(world):
    """Catches any organisation route, now or later, that shows or changes another tenant's objects."""
    assert sweep(**world) == []


class LeakyJobList(generics.ListAPIView):
    """An endpoint someone forgot to scope: it lists every organisation's jobs."""

    queryset = Job.objects.all()
    serializer_class = JobSerializer


urlpatterns_with_leak = [
    path("api/v1/orgs/<slug:org_slug>/", include([path("leaky-jobs", LeakyJobList.as_view(), name="leaky-jobs")])),
    path("", include("controlplane.urls")),
]


def test_sweep_catches_a_new_unscoped_endpoint(world, settings):
    """Proves the sweep is not vacuous: adding one unscoped route makes it report the leak."""
    import sys
    import types

    module = types.ModuleType("leaky_urlconf")
    module.urlpatterns = urlpatterns_with_leak
    sys.modules["leaky_urlconf"] = module
    settings.ROOT_URLCONF = "leaky_urlconf"
    try:
        findings = sweep(**world, urlconf="leaky_urlconf")
    finally:
        del sys.modules["leaky_urlconf"]
    assert findings, "the sweep missed an unscoped endpoint"
    assert all("leaky-jobs" in f for f in findings), findings


def test_scoped_views_cannot_override_get_queryset():
    """Catches a view that sidesteps scoping by overriding get_queryset instead of the named escape hatch."""
    from rest_framework import viewsets

    from tenants.scoping import OrganizationScopedViewMixin

    with pytest.raises(TypeError, match="dangerously_get_queryset"):

        class Sneaky(OrganizationScopedViewMixin, viewsets.GenericViewSet):
            queryset = Job.objects.all()

            def get_queryset(self):
                return Job.objects.all()
