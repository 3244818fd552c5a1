"""One localstripe per test session (billing tests and the portal's end-to-end tests share it). localstripe
keeps its state for the whole session: tests look only at the customers they create."""

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


def _answers(url: str) -> bool:
    try:
        return (
            httpx.get(f"{url}/v1/customers", headers={"Authorization": f"Bearer {STRIPE_KEY}"}, timeout=1).status_code
            == 200
        )
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory):
    port = free_port()
    workdir = tmp_path_factory.mktemp("localstripe")
    log = open(workdir / "localstripe.log", "ab")  # noqa: SIM115  (owned by the child)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "localstripe"), "--port", str(port), "--from-scratch"],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
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
