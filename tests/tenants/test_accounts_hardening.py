"""Accounts under attack: organisation creation needs a confirmed address, sign-in attempts are limited."""

import pytest
from rest_framework.test import APIClient

from tenants import services
from tenants.models import Organization
from tests import builders

pytestmark = pytest.mark.django_db

ORG = {"name": "Acme", "slug": "acme-1", "country": "DE", "region": "eu-central"}


def test_the_api_creates_organisations_only_for_confirmed_addresses():
    """Catches the API letting a fresh account create organisations (and so trials and keys) the portal refuses."""
    user = builders.make_user()
    client = builders.session_client(user)
    refused = client.post("/api/v1/orgs", ORG, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "email_not_verified"
    assert not Organization.objects.filter(slug="acme-1").exists()
    services.email_verify(token=services.email_verification_send(user=user))
    assert client.post("/api/v1/orgs", ORG, format="json").status_code == 201


def test_the_portal_refuses_by_the_same_rule():
    user = builders.make_user()
    client = APIClient()
    client.force_login(user)
    response = client.post("/app/new", {**ORG, "slug": "acme-2"})
    assert response.status_code == 403 and not Organization.objects.filter(slug="acme-2").exists()
