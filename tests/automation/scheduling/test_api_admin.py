"""Operators' admin pages for production scheduling."""

import pytest
from django.test import Client
from django.urls import reverse

from automation.scheduling.models import Machine, Order, Product, Run
from tenants.models import User
from tests import builders
from tests.automation.scheduling.scheduling_api import FT06, build_factory, client_for, post

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser(email="ops@lightsout.example", password=builders.PASSWORD))
    return client


def test_admin_lists_and_shows_machines_products_orders_and_runs(org, operator):
    """Catches a broken list_display, inline or search field that would 500 on the operators' pages."""
    client = client_for(org)
    build_factory(client, org)
    run = Run.objects.get(pk=post(client, org, "runs", {"jobshop": {"jobs": FT06}})["id"])
    objects = [
        Machine.objects.get(organization=org, code="CUT"),
        Product.objects.get(organization=org, code="bracket"),
        Order.objects.get(organization=org, code="B1"),
        run,
    ]
    for obj in objects:
        name = f"admin:scheduling_{type(obj)._meta.model_name}"
        assert operator.get(reverse(f"{name}_changelist"), {"q": "plant"}).status_code == 200
        assert operator.get(reverse(f"{name}_change", args=[obj.pk])).status_code == 200


def test_runs_are_read_only_in_the_admin(org, operator):
    """Catches an operator being able to edit or delete a run's recorded results."""
    run = Run.objects.get(pk=post(client_for(org), org, "runs", {"jobshop": {"jobs": FT06}})["id"])
    change = reverse("admin:scheduling_run_change", args=[run.pk])
    operator.post(change, {"objective": "weighted_tardiness"})
    run.refresh_from_db()
    assert run.objective == "makespan"
    assert operator.get(reverse("admin:scheduling_run_delete", args=[run.pk])).status_code == 403
