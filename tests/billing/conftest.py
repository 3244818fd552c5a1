"""One localstripe per test session, the settings that point the Stripe SDK at it, and webhook delivery to a live
server. localstripe keeps its state for the whole session: tests look only at the customers they create."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from controlplane.embedded import free_port

STRIPE_KEY = "sk_test_lightsout"
WEBHOOK_SECRET = "whsec_lightsout_tests"
WEBHOOK_PATH = "/api/v1/billing/stripe/webhook"


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/customers", headers={"Authorization": f"Bearer {STRIPE_KEY}"},
                         timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory):
    port = free_port()
    workdir = tmp_path_factory.mktemp("localstripe")
    log = open(workdir / "localstripe.log", "ab")  # noqa: SIM115  (owned by the child)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "localstripe"), "--port", str(port), "--from-scratch"],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"localstripe did not start; see {workdir / 'localstripe.log'}")
        time.sleep(0.1)
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=10)
    log.close()


@pytest.fixture
def stripe_settings(settings, localstripe):
    settings.STRIPE_API_BASE = localstripe
    settings.STRIPE_API_KEY = STRIPE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    return settings


def _register_webhook(localstripe_url: str, target: str) -> None:
    response = httpx.post(f"{localstripe_url}/_config/webhooks/lightsout",
                          data={"url": target, "secret": WEBHOOK_SECRET}, timeout=5)
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
