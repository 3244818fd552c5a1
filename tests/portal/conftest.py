"""End-to-end fixtures for the portal: the real ASGI app under uvicorn (with localstripe for payments and mail
written to files), Debian's Chromium driven by Playwright, and screenshots kept as test artefacts."""

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from controlplane.embedded import free_port
from tests.stripe_server import STRIPE_KEY
from tests.workers import ROOT, start_web_server, stop_worker, wait_for_http

SCREENSHOTS = Path(os.environ.get("LIGHTSOUT_SCREENSHOTS", ROOT / "test-artifacts" / "screenshots"))


@dataclass
class Portal:
    url: str
    mail_dir: Path

    def mail_link(self, to: str, pattern: str) -> str:
        """The first link matching `pattern` in the newest mail to `to`."""
        for message in sorted(self.mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True):
            text = message.read_text()
            if f"To: {to}" in text:
                match = re.search(pattern, text)
                if match:
                    return match.group(0)
        raise AssertionError(f"no mail to {to} with {pattern!r} in {self.mail_dir}")


@pytest.fixture(scope="session")
def portal_server(django_db_setup, django_db_blocker, localstripe, tmp_path_factory):
    mail_dir = tmp_path_factory.mktemp("mail")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "STRIPE_API_BASE": localstripe,
        "STRIPE_API_KEY": STRIPE_KEY,
        "STRIPE_PUBLISHABLE_KEY": "pk_test_lightsout",
        "STRIPE_JS_URL": f"{localstripe}/js.stripe.com/v3/",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "PUBLIC_BASE_URL": url,
    }
    process = start_web_server(port=port, log_path=tmp_path_factory.mktemp("portal") / "uvicorn.log", env=env)
    try:
        wait_for_http(f"{url}/healthz")
        yield Portal(url=url, mail_dir=mail_dir)
    finally:
        stop_worker(process)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is needed for the portal's browser tests; `make test` installs it.")
    # Playwright's sync API keeps an event loop in this thread, which Django's guard against ORM calls from
    # async code takes for async code. The tests' own ORM calls are ordinary synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
        )
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def new_page(browser):
    """Pages in fresh browser contexts (separate cookies: one per person in a test)."""
    contexts = []

    def make(locale: str = "en-GB"):
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
