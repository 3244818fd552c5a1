"""The settings that point the Stripe SDK at the session's localstripe (tests/stripe_server.py), and webhook
delivery to a live server."""

import time

import httpx
import pytest

from controlplane.embedded import free_port
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
    _register_webhook(localstripe, f"http://127.0.0.1:{free_port()}{WEBHOOK_PATH}")
    # localstripe waits a second before each delivery and reads the URL after it: let any delivery already on
    # its way finish before the database is emptied under it.
    time.sleep(1)
