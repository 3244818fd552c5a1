"""The settings that point the Stripe SDK at the session's localstripe (tests/stripe_server.py), and webhook
delivery to a live server."""

import http.server
import json
import threading

import httpx
import pytest

from tests.stripe_server import STRIPE_KEY

WEBHOOK_SECRET = "whsec_lightsout_tests"
WEBHOOK_PATH = "/api/v1/billing/stripe/webhook"


@pytest.fixture
def stripe_settings(settings, localstripe):
    settings.STRIPE_API_BASE = localstripe
    settings.STRIPE_API_KEY = STRIPE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    return settings


def _register_webhook(localstripe_url: str, target: str) -> None:
    response = httpx.post(
        f"{localstripe_url}/_config/webhooks/lightsout", data={"url": target, "secret": WEBHOOK_SECRET}, timeout=5
    )
    response.raise_for_status()


@pytest.fixture
def stripe_webhooks(stripe_settings, live_server, localstripe):
    """localstripe posts its signed events to the app under test; afterwards to a port nobody listens on, so a
    late event cannot reach the next test's database."""
    _register_webhook(localstripe, f"{live_server.url}{WEBHOOK_PATH}")
    yield
    _drain_deliveries(localstripe)


def _drain_deliveries(localstripe_url: str) -> None:
    """Point deliveries at a sink, then wait until a marker event created now reaches it. localstripe delivers
    each event after a one-second delay, reading the URL only then, in the order the events were made: when the
    marker arrives, every earlier event has been sent (to the app or the sink), so none lands in the next test's
    database."""
    marker_seen = threading.Event()

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.end_headers()
            if json.loads(body or b"{}").get("data", {}).get("object", {}).get("email") == MARKER_EMAIL:
                marker_seen.set()

        def log_message(self, *args):  # quiet
            pass

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        _register_webhook(localstripe_url, f"http://127.0.0.1:{sink.server_address[1]}{WEBHOOK_PATH}")
        httpx.post(
            f"{localstripe_url}/v1/customers", data={"email": MARKER_EMAIL}, auth=(STRIPE_KEY, ""), timeout=5
        ).raise_for_status()
        assert marker_seen.wait(timeout=60), "localstripe never delivered the marker event"
    finally:
        sink.shutdown()
        sink.server_close()


MARKER_EMAIL = "drain-marker@lightsout.invalid"
