"""Tenant isolation across every organisation endpoint, present and future."""

import json

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


def _billing_objects(org) -> list:
    """A subscription, an override, a credit, ledger rows and a closed invoice with its lines."""
    from datetime import timedelta

    from billing.invoicing import period_close
    from billing.ledger import ledger_flush
    from billing.models import UsageEvent
    from billing.services import credit_issue, quota_override_set, subscription_for
    from billing.usage import usage_record

    actor = builders.owner_actor(org)
    subscription = subscription_for(organization=org)
    override = quota_override_set(
        organization=org, meter="maintenance.model_runs", hard_limit=500, reason="sweep", actor=actor
    )
    credit = credit_issue(organization=org, meter="maintenance.model_runs", quantity=1, reason="sweep", actor=actor)
    usage_record(organization_id=org.pk, meter="maintenance.model_runs", quantity=3, idempotency_key="sweep-1")
    ledger_flush()
    [invoice] = period_close(organization_id=org.pk, now=subscription.current_period_end + timedelta(hours=2))
    return [subscription, override, credit, *UsageEvent.objects.filter(organization=org), invoice, *invoice.lines.all()]


@pytest.fixture
def world(base_model_dir, settings, tmp_path):
    """Organisation A with one object of every kind a route can address, and B's callers."""
    import tests.jobs.sample_jobs  # noqa: F401  (registers the test job kind)

    org_a = builders.make_org(slug="alpha-works")
    for role in (Role.ADMIN, Role.MEMBER, Role.VIEWER):
        builders.add_member(org_a, role)
    from tenants import services

    services.invitation_create(
        organization=org_a, email="pending@example.com", role=Role.MEMBER, actor=builders.owner_actor(org_a)
    )
    key_a, _ = builders.make_key(org_a)
    job_a = job_create(organization=org_a, kind="test.count", params={}, actor=builders.owner_actor(org_a))
    billing_a = _billing_objects(org_a)
    objects_a = [
        org_a,
        *org_a.memberships.all(),
        *Invitation.objects.filter(organization=org_a),
        key_a,
        job_a,
        *job_a.events.all(),
        *AuditEvent.objects.filter(organization=org_a),
        *billing_a,
        *_scheduling_objects(org_a),
        *_inference_objects(org_a, base_model_dir, settings, tmp_path),
        *_maintenance_objects(org_a),
        *_quality_objects(org_a),
        *_assistant_objects(org_a),
    ]

    org_b = builders.make_org(slug="bravo-plant")
    owner_b = org_b.memberships.get(role=Role.OWNER).user
    _, plaintext_b = builders.make_key(org_b)
    clients_b = {"B owner (session)": builders.session_client(owner_b), "B key": builders.key_client(plaintext_b)}
    return {"org_a": org_a, "objects_a": objects_a, "org_b": org_b, "clients_b": clients_b}


def _inference_objects(org, base_model_dir, settings, tmp_path) -> list:
    """A tenant model and a version of it with no servers behind them (routes must 404 for strangers before touching
    vLLM), a training file and a queued fine-tuning job (no worker runs here)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from inference.fine_tuning import fine_tuning_job_create, training_file_upload
    from inference.models import AdapterVersion
    from inference.services import adapter_version_create, base_model_register, tenant_model_get_or_create
    from tests.model_fixtures import MemorisedFact

    settings.TRAINING_STORE, settings.ADAPTER_STORE = tmp_path / "training", tmp_path / "adapters"
    base = base_model_register(name="sweep-base", weights_path=base_model_dir, license="apache-2.0")
    model = tenant_model_get_or_create(organization=org, alias="alpha/assistant", base_model=base)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    version = adapter_version_create(
        tenant_model=model, adapter_dir=adapter, rank=8, target_modules=["q_proj"], source=AdapterVersion.Source.UPLOAD
    )
    examples = MemorisedFact().examples()
    data = "".join(json.dumps(e) + "\n" for e in examples + examples[:2]).encode()
    training = training_file_upload(
        organization=org, upload=SimpleUploadedFile("sweep.jsonl", data), purpose="fine-tune"
    )
    ft = fine_tuning_job_create(
        organization=org, actor=builders.owner_actor(org), model=base.name, training_file=training
    )
    return [model, version, training, ft, ft.job]


def _scheduling_objects(org):
    """One object of every production-scheduling model that has a route, and a run (with its job)."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from automation.scheduling import runs
    from automation.scheduling import services as scheduling

    actor = builders.owner_actor(org)
    machine = scheduling.machine_create(
        organization=org,
        code="CUT",
        timezone="Europe/Berlin",
        shifts=[{"days": ["mon"], "start": "06:00", "end": "14:00"}],
    )
    now = timezone.now()
    downtime = scheduling.downtime_create(
        organization=org, machine=machine, starts_at=now, ends_at=now + timedelta(hours=1)
    )
    material = scheduling.material_create(organization=org, code="paint", arrives_at=now)
    product = scheduling.product_create(
        organization=org,
        code="bracket",
        family="steel",
        operations=[{"name": "cut", "options": [{"machine": machine, "minutes_per_unit": 2}], "materials": [material]}],
    )
    setup = scheduling.setup_time_create(
        organization=org, machine=machine, from_family="steel", to_family="alu", minutes=30
    )
    order = scheduling.order_create(organization=org, code="B1", product=product, quantity=10)
    run = runs.run_create(
        organization=org, actor=actor, objective="makespan", time_limit_s=5, jobshop={"jobs": [[[0, 3], [1, 2]]]}
    )
    supplier = scheduling.supplier_create(organization=org, code="acme", material=material, lead_days=1)
    price = scheduling.supplier_price_set(organization=org, supplier=supplier, day=now.date(), price=Decimal("10.5"))
    bom_line = scheduling.bom_line_set(
        organization=org, product=product, position=1, material=material, quantity_per_unit=Decimal(2)
    )
    rate = scheduling.tariff_rate_set(organization=org, weekday=0, hour=8, price_per_kwh=Decimal("0.3"))
    return [machine, downtime, material, product, setup, order, run, run.job, supplier, price, bom_line, rate]


def _maintenance_objects(org) -> list:
    """An asset type, assets with telemetry and history, a trained model, health, an anomaly, a recommendation with
    its work order, a device key, a webhook and a delivery, built by the maintenance jobs' own handlers."""
    from tests.automation.maintenance.maintenance_api import maintenance_objects

    return maintenance_objects(org)


def _quality_objects(org) -> list:
    """A line (stations, machines, variables, a characteristic), a lot, a unit with steps and an analysis."""
    from tests.automation.quality.quality_api import quality_objects

    return quality_objects(org)


def _assistant_objects(org) -> list:
    """A document with its passages, through the upload service (its embedding job stays queued); a fine-tuning
    data set with its pairs; a copilot conversation of the owner's with a proposed change."""
    from assistant.datasets import qa_dataset_build
    from assistant.services import Upload, document_upload

    document = document_upload(
        organization=org,
        upload=Upload(filename="manual.md", content=b"# Press 4\n\nThe ram guide bushing is HX-4471-B."),
        actor=builders.owner_actor(org),
    )
    from assistant.models import Message, Proposal
    from assistant.services import conversation_create

    conversation = conversation_create(organization=org, actor=builders.owner_actor(org), title="sweep")
    message = Message.objects.create(
        organization=org, conversation=conversation, role=Message.Role.ASSISTANT, outcome=Message.Outcome.PROPOSED
    )
    proposal = Proposal.objects.create(
        organization=org,
        conversation=conversation,
        message=message,
        tool="maintenance_work_order_open",
        arguments={"asset": "P4", "component": "pump", "action": "inspect", "priority": "low", "due_by": "2030-01-01"},
    )
    dataset = qa_dataset_build(organization=org, actor=builders.owner_actor(org), name="sweep", records=False)
    return [document, *document.passages.all(), dataset, *dataset.pairs.all(), conversation, message, proposal]


def test_no_endpoint_leaks_or_accepts_writes_across_organisations(world):
    """Catches any organisation route, now or later, that shows or changes another tenant's objects."""
    assert sweep(**world) == []


class LeakyJobList(generics.ListAPIView):
    """An endpoint someone forgot to scope: it lists every organisation's jobs."""

    queryset = Job.objects.all()
    serializer_class = JobSerializer


# Only the new route: the whole tree's sweep (the test above) already shows the real routes report nothing, so
# sweeping them again here would only double the suite's longest test.
urlpatterns_with_leak = [
    path("api/v1/orgs/<slug:org_slug>/", include([path("leaky-jobs", LeakyJobList.as_view(), name="leaky-jobs")])),
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
    """Catches a view that sidesteps scoping by overriding get_queryset instead of the hook that stays scoped."""
    from rest_framework import viewsets

    from tenants.scoping import OrganizationScopedViewMixin

    with pytest.raises(TypeError, match="get_base_queryset"):

        class Sneaky(OrganizationScopedViewMixin, viewsets.GenericViewSet):
            queryset = Job.objects.all()

            def get_queryset(self):
                return Job.objects.all()
