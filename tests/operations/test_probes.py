"""Kubernetes probes and Prometheus scrapes under PRODUCTION settings, called as the kubelet calls them: the pod's
IP as Host, plain HTTP, no X-Forwarded-Proto."""

import subprocess

import httpx
import pytest

from controlplane.embedded import free_port
from tests.workers import start_web_server, stop_worker, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
POD = "10.244.3.17:8000"
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "controlplane.settings.production",
    "DJANGO_SECRET_KEY": "k" * 20 + "-9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a",
    "DJANGO_ALLOWED_HOSTS": "lightsout.example",
    "METRICS_TOKEN": "scrape-secret-0123456789",
}


def _serve(tmp_path, env):
    port = free_port()
    process = start_web_server(port=port, log_path=tmp_path / f"web-{port}.log", env=env)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(url + "/livez", headers={"Host": POD}, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=240, what="the production-settings server")
    except AssertionError:
        stop_worker(process)
        raise AssertionError((tmp_path / f"web-{port}.log").read_text()[-3000:]) from None
    return process, url


def _kubelet(url: str, path: str, **headers) -> httpx.Response:
    return httpx.get(url + path, headers={"Host": POD, "User-Agent": "kube-probe/1.32", **headers}, timeout=10)


def test_probes_and_metrics_pass_under_production_settings(tmp_path):
    process, url = _serve(tmp_path, PRODUCTION)
    try:
        live = _kubelet(url, "/livez")
        ready = _kubelet(url, "/readyz")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
        assert _kubelet(url, "/healthz").status_code == 200  # the old path, kept for existing load balancers
        # Everything else still refuses an unknown Host and redirects plain HTTP: the probes are the exception.
        assert _kubelet(url, "/api/v1/auth/me").status_code == 400
        https = httpx.get(url + "/api/v1/auth/me", headers={"Host": "lightsout.example"}, timeout=10)
        assert https.status_code == 301 and https.headers["location"].startswith("https://lightsout.example/")
        # /metrics: the bearer token when one is configured.
        assert _kubelet(url, "/metrics").status_code == 401
        scraped = _kubelet(url, "/metrics", Authorization="Bearer " + PRODUCTION["METRICS_TOKEN"])
        assert scraped.status_code == 200 and "lightsout_queue_depth" in scraped.text
    finally:
        stop_worker(process)


def test_readiness_fails_when_redis_is_down_and_liveness_does_not(tmp_path):
    closed = free_port()  # nothing listens here
    process, url = _serve(tmp_path, {**PRODUCTION, "REDIS_URL": f"redis://127.0.0.1:{closed}/0"})
    try:
        ready = _kubelet(url, "/readyz")
        assert ready.status_code == 503 and set(ready.json()["failed"]) == {"redis"}
        assert _kubelet(url, "/livez").status_code == 200  # a Redis outage must not restart every web pod
    finally:
        stop_worker(process)


def test_production_settings_use_the_s3_store_when_a_bucket_is_set():
    """django-storages' S3 backend for artifacts and media, configured only from the environment."""
    script = (
        "import django; django.setup(); from django.core.files.storage import storages; "
        "a = storages['artifacts']; print(type(a).__name__, a.bucket_name, a.location, a.endpoint_url, "
        "type(storages['default']).__name__)"
    )
    env = {
        **PRODUCTION,
        "OBJECT_STORE_BUCKET": "lightsout-prod",
        "OBJECT_STORE_ENDPOINT_URL": "https://s3.eu-central.example",
        "OBJECT_STORE_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "OBJECT_STORE_SECRET_ACCESS_KEY": "secret",
    }
    import os
    import sys

    from tests.workers import ROOT

    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["S3Storage", "lightsout-prod", "artifacts", "https://s3.eu-central.example", "S3Storage"]
