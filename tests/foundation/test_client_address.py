"""The one client address every throttle and the audit log use: X-Forwarded-For only through trusted proxies."""

import pytest
from rest_framework.test import APIClient

from foundation.client_address import client_address_from
from tenants.models import AuditEvent


def test_without_trusted_proxies_the_header_is_ignored(settings):
    settings.TRUSTED_PROXY_NETWORKS, settings.TRUSTED_PROXY_HOPS = [], 0
    assert client_address_from(peer="203.0.113.5", forwarded_for="6.6.6.6") == "203.0.113.5"


def test_trusted_networks_skip_our_proxies_only(settings):
    """Catches taking the header's first (client-written) entry, or believing a peer outside the proxy networks."""
    settings.TRUSTED_PROXY_NETWORKS, settings.TRUSTED_PROXY_HOPS = ["10.0.0.0/8"], 0
    # client -> proxy 10.1.1.1 -> ingress 10.0.0.5 -> app; the client forged 6.6.6.6 in front.
    assert client_address_from(peer="10.0.0.5", forwarded_for="6.6.6.6, 203.0.113.5, 10.1.1.1") == "203.0.113.5"
    # A caller connecting directly (not through our proxies) cannot choose its address with the header.
    assert client_address_from(peer="198.51.100.2", forwarded_for="6.6.6.6") == "198.51.100.2"
    # Garbage in the header stops the walk at the last address a trusted hop vouched for.
    assert client_address_from(peer="10.0.0.5", forwarded_for="6.6.6.6, not-an-ip") == "10.0.0.5"


def test_a_hop_count_takes_the_entry_the_last_proxy_appended(settings):
    settings.TRUSTED_PROXY_NETWORKS, settings.TRUSTED_PROXY_HOPS = [], 1
    assert client_address_from(peer="10.0.0.5", forwarded_for="6.6.6.6, 203.0.113.5") == "203.0.113.5"
    settings.TRUSTED_PROXY_HOPS = 2
    assert client_address_from(peer="10.0.0.5", forwarded_for="6.6.6.6, 203.0.113.5, 10.1.1.1") == "203.0.113.5"


@pytest.mark.django_db
def test_a_forged_forwarded_for_shares_the_real_clients_bucket(settings):
    """Catches a throttle keyed on the raw header: each forged value used to buy a fresh bucket."""
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    client = APIClient(REMOTE_ADDR="203.0.113.5")
    statuses = [
        client.post(
            "/api/v1/auth/password-reset", {"email": "x@example.com"}, format="json", HTTP_X_FORWARDED_FOR=f"6.6.6.{i}"
        ).status_code
        for i in range(5)
    ]
    assert statuses[:3] == [202, 202, 202] and statuses[3:] == [429, 429]


@pytest.mark.django_db
def test_the_audit_log_records_the_real_address_not_a_forged_header(settings):
    """Catches the audit log writing whatever X-Forwarded-For the caller sent as its address."""
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.0.0/8"]
    client = APIClient(REMOTE_ADDR="10.0.0.5")
    client.post(
        "/api/v1/auth/login",
        {"email": "nobody@example.com", "password": "wrong-password"},
        format="json",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5",
    )
    event = AuditEvent.objects.get(action=AuditEvent.Action.SIGN_IN_FAILED)
    assert event.ip_address == "203.0.113.5"
    direct = APIClient(REMOTE_ADDR="198.51.100.8")
    direct.post(
        "/api/v1/auth/login",
        {"email": "nobody@example.com", "password": "wrong-password"},
        format="json",
        HTTP_X_FORWARDED_FOR="6.6.6.6",
    )
    assert set(AuditEvent.objects.values_list("ip_address", flat=True)) == {"203.0.113.5", "198.51.100.8"}
