"""The one outbound-request helper: public addresses only, the address it checked, no redirects.

DNS is the one thing played here: `socket.getaddrinfo` answers as a rebinding attacker's name server would (a public
address first, 127.0.0.1 afterwards). Everything else is real: the maintenance webhook service and delivery, httpx,
and an HTTP server on loopback that records whether it was called.
"""

import socket

import pytest

from automation.maintenance import services as maintenance_services
from automation.maintenance.models import WebhookDelivery
from automation.maintenance.webhooks import webhook_deliver
from foundation.outbound import OutboundRefused, address_is_public, outbound_check, outbound_post
from foundation.webhook_delivery import DeliveryFailed
from tests.loopback import QuietHandler, serving

NAME = "hooks.rebind.example"
PUBLIC = "93.184.216.34"


@pytest.fixture
def receiver():
    received: list[dict] = []

    class Handler(QuietHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"path": self.path, "host": self.headers["Host"]})
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/internal")
            else:
                self.send_response(204)
            self.end_headers()

    with serving(Handler) as port:
        yield port, received


@pytest.fixture
def dns(monkeypatch):
    """A name server for NAME whose answers the test sets; other names resolve as usual. Counts NAME's lookups."""
    real = socket.getaddrinfo
    state = {"answers": [PUBLIC], "lookups": 0}

    def getaddrinfo(host, port, *args, **kwargs):
        if host != NAME:
            return real(host, port, *args, **kwargs)
        state["lookups"] += 1
        answer = state["answers"][min(state["lookups"], len(state["answers"])) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return state


def test_non_public_addresses_are_refused():
    for address in ("127.0.0.1", "10.1.2.3", "192.168.1.1", "169.254.169.254", "100.64.0.1", "::1", "fd00::1"):
        assert not address_is_public(address), address
    assert not address_is_public("::ffff:127.0.0.1")  # the IPv4-mapped form of loopback
    assert address_is_public(PUBLIC)
    with pytest.raises(OutboundRefused, match="non-public"):
        outbound_check("https://127.0.0.1/hook", allow_private=False)
    with pytest.raises(OutboundRefused, match="https"):
        outbound_check("http://example.com/hook", allow_private=False)


@pytest.mark.django_db
def test_a_name_that_rebinds_to_loopback_after_registration_is_not_called(settings, org, dns, receiver):
    """Catches a check-then-fetch that resolves twice: the name passed at registration (public) and pointed at
    127.0.0.1 at delivery, where the receiver stands in for an internal service."""
    settings.MAINTENANCE_WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = False
    port, received = receiver
    endpoint, _ = maintenance_services.webhook_endpoint_create(organization=org, url=f"https://{NAME}:{port}/hook")
    dns["answers"] = ["127.0.0.1"]
    dns["lookups"] = 0
    delivery = WebhookDelivery.objects.create(
        organization=org, endpoint=endpoint, event="recommendation.created", payload={"x": 1}
    )
    with pytest.raises(DeliveryFailed, match="non-public"):
        webhook_deliver(delivery_id=str(delivery.pk))
    assert received == []
    delivery.refresh_from_db()
    assert delivery.response_status is None and "non-public" in delivery.last_error


def test_the_request_goes_to_the_address_that_was_checked_without_a_second_lookup(dns, receiver):
    """Catches an HTTP client that resolves the name again (the second answer here is an address nobody serves)."""
    port, received = receiver
    dns["answers"] = ["127.0.0.1", "10.255.255.1"]
    response = outbound_post(f"http://{NAME}:{port}/hook", content=b"{}", headers={}, timeout=5, allow_private=True)
    assert response.status_code == 204
    assert dns["lookups"] == 1
    assert received == [{"path": "/hook", "host": f"{NAME}:{port}"}]


def test_redirects_are_not_followed(dns, receiver):
    port, received = receiver
    dns["answers"] = ["127.0.0.1"]
    response = outbound_post(f"http://{NAME}:{port}/redirect", content=b"{}", headers={}, timeout=5, allow_private=True)
    assert response.status_code == 302 and [r["path"] for r in received] == ["/redirect"]
