"""/metrics from several processes (web and a Celery worker, multi-process mode) and JSON logs whose request id
follows an API call into the job a worker runs for it."""

import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import tests.jobs.sample_jobs  # noqa: F401  (the test.count job kind)
from billing.ledger import ledger_flush
from billing.usage import usage_record
from controlplane.embedded import free_port
from jobs import services
from jobs.models import Job
from tenants.roles import Role
from tests import builders
from tests.workers import start_web_server, start_worker, stop_worker, wait_for_http, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

NAMED_SERIES = [
    "lightsout_http_requests",
    "lightsout_http_request_duration_seconds",
    "lightsout_gateway_added_latency_seconds",
    "lightsout_gateway_upstream_latency_seconds",
    "lightsout_gateway_tokens",
    "lightsout_queue_depth",
    "lightsout_queue_oldest_job_age_seconds",
    "lightsout_job_duration_seconds",
    "lightsout_adapter_loads",
    "lightsout_adapter_evictions",
    "lightsout_ledger_lag_entries",
    "lightsout_ledger_lag_seconds",
    "lightsout_webhook_failures",
]


def _scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    samples: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        samples[(family.name, ())] = 1.0  # the family is declared
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples, name: str, **labels) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(
        v for (n, ls), v in samples.items() if n == name and ls and set(labels.items()) <= set(dict(ls).items())
    ) or samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def multiprocess_dir(tmp_path):
    path = tmp_path / "prometheus"
    path.mkdir()
    return {"PROMETHEUS_MULTIPROC_DIR": str(path), "LOG_FORMAT": "json"}


def test_metrics_from_web_and_worker_exist_and_move(org, tmp_path, multiprocess_dir):
    port = free_port()
    web = start_web_server(port=port, log_path=tmp_path / "web.log", env=multiprocess_dir)
    worker = None
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/livez")
        before = _scrape(url)
        for name in NAMED_SERIES:
            assert (name, ()) in before, f"{name} is not exposed"

        # Requests, per route pattern and status, from the web process.
        _, secret = builders.make_key(org)
        for _ in range(3):
            assert (
                httpx.get(
                    f"{url}/api/v1/orgs/{org.slug}/jobs", headers={"Authorization": f"Bearer {secret}"}, timeout=60
                ).status_code
                == 200
            )
        assert (
            httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer lo_live_nope"}, timeout=60).status_code
            == 401
        )

        # A job waits in its queue (no worker yet), then a worker runs it.
        job = services.job_create(
            organization=org, kind="test.count", params={"steps": 2}, actor=builders.owner_actor(org)
        )
        # Usage recorded and not yet flushed to PostgreSQL is ledger lag.
        usage_record(organization_id=org.pk, meter="maintenance.model_runs", quantity=1, idempotency_key="lag-probe-1")
        waiting = _scrape(url)
        route = "/api/v1/orgs/<slug:org_slug>/jobs"
        routes = {dict(ls).get("route") for (n, ls), _ in waiting.items() if n == "lightsout_http_requests_total"}
        assert route in routes, routes
        assert (
            _value(waiting, "lightsout_http_requests_total", route=route, status="200")
            - _value(before, "lightsout_http_requests_total", route=route, status="200")
            == 3
        )
        assert _value(waiting, "lightsout_http_request_duration_seconds_count", route=route, status="200") >= 3
        assert _value(waiting, "lightsout_http_requests_total", route="/v1/models", status="401") >= 1
        assert _value(waiting, "lightsout_queue_depth", queue="default") >= 1
        assert _value(waiting, "lightsout_queue_oldest_job_age_seconds", queue="default") > 0
        assert _value(waiting, "lightsout_ledger_lag_entries") >= 1

        worker = start_worker(queues="default", log_path=tmp_path / "worker.log", env=multiprocess_dir)
        wait_until(lambda: Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED, timeout=300, what="the job")
        ledger_flush(max_seconds=5)
        after = _scrape(url)
        assert _value(after, "lightsout_queue_depth", queue="default") == 0
        assert _value(after, "lightsout_queue_oldest_job_age_seconds", queue="default") == 0
        assert (
            _value(
                after, "lightsout_job_duration_seconds_count", queue="default", kind="test.count", outcome="succeeded"
            )
            == 1
        )
        assert _value(after, "lightsout_ledger_lag_entries") == 0
        assert _value(after, "lightsout_ledger_lag_seconds") == 0
    finally:
        if worker is not None:
            stop_worker(worker)
        stop_worker(web)


def test_a_worker_log_line_carries_the_request_id_of_the_api_call_that_started_its_job(org, tmp_path, multiprocess_dir):
    """API call (X-Request-Id in, x-request-id out) -> job queued -> the worker's JSON log lines of that job."""
    from tests.automation.maintenance.maintenance_api import make_asset_type

    make_asset_type(org, "pump")
    log = tmp_path / "worker.log"
    worker = start_worker(queues="maintenance", log_path=log, env=multiprocess_dir)
    try:
        client = builders.session_client(org.memberships.get(role=Role.OWNER).user)
        response = client.post(
            f"/api/v1/orgs/{org.slug}/maintenance/models/train",
            {"asset_type": "pump"},
            format="json",
            HTTP_X_REQUEST_ID="req-ops-4f1c2b9e",
        )
        assert response.status_code == 202, response.content
        assert response["x-request-id"] == "req-ops-4f1c2b9e"
        job_id = response.json()["job"]
        wait_until(lambda: Job.objects.get(pk=job_id).status in Job.FINISHED, timeout=300, what="the job")

        def job_lines():
            lines = []
            for raw in log.read_text().splitlines():
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                if job_id in entry.get("message", ""):
                    lines.append(entry)
            return lines if any("finished" in e["message"] for e in lines) else None

        lines = wait_until(job_lines, timeout=120, what="the worker's log lines of the job")
        assert {e["request_id"] for e in lines} == {"req-ops-4f1c2b9e"}
        assert any(e["message"].startswith(f"Job {job_id} (") and "started" in e["message"] for e in lines)
        assert all(e["level"] and e["logger"] and e["time"] for e in lines)
    finally:
        stop_worker(worker)
    # Without an incoming id, one is made and answered.
    made = builders.session_client(org.memberships.get(role=Role.OWNER).user).get(f"/api/v1/orgs/{org.slug}/jobs")
    assert len(made["x-request-id"]) == 32
