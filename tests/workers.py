"""Real Celery workers for the tests, pointed at the test database."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def worker_env() -> dict[str, str]:
    """The environment of this test process, with the database renamed to pytest-django's test database."""
    url = urlsplit(os.environ["DATABASE_URL"])
    test_db_url = urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))
    return {
        **os.environ,
        "DATABASE_URL": test_db_url,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings.test",
        # torch's OpenMP threads spin while waiting by default: on shared cores that made training 3-5x slower.
        "OMP_WAIT_POLICY": "PASSIVE",
    }


def start_worker(
    *, queues: str = "default", name: str = "w1", log_path: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen:
    log = open(log_path or os.devnull, "ab")  # noqa: SIM115  (owned by the child)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "controlplane",
            "worker",
            "-Q",
            queues,
            "--pool",
            "solo",
            "--include",
            "tests.jobs.sample_jobs",
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env={**worker_env(), **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def running_worker(**kwargs):
    process = start_worker(**kwargs)
    try:
        yield process
    finally:
        stop_worker(process)


@contextmanager
def running_optimization_worker(*, name: str, log_dir: Path):
    """A worker on the optimisation queue; two CP-SAT threads (the shared machine has two cores), also in this
    process while it runs."""
    patch = pytest.MonkeyPatch()
    patch.setenv("SCHEDULING_SOLVER_WORKERS", "2")
    try:
        with running_worker(queues="optimization", name=name, log_path=log_dir / "worker.log") as process:
            yield process
    finally:
        patch.undo()


def wait_until(predicate, *, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def start_web_server(*, port: int, log_path: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The real ASGI application (gateway and Django) under uvicorn, on the test database."""
    log = open(log_path or os.devnull, "ab")  # noqa: SIM115  (owned by the child)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "controlplane.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--lifespan",
            "on",
        ],
        cwd=ROOT,
        env={**worker_env(), **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_http(url: str, *, timeout: float = 60) -> None:
    import httpx

    def answers():
        try:
            return httpx.get(url, timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout=timeout, what=f"{url} to answer")
