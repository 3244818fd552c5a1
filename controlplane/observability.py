"""Probes, request ids, request metrics, the `/metrics` view, Sentry and OpenTelemetry.

`ProbeMiddleware` sits first in MIDDLEWARE: the kubelet calls the probes with the pod's IP as Host over plain HTTP,
and Prometheus scrapes the same way, so these paths are answered before host validation (ALLOWED_HOSTS) and the
HTTPS redirect could refuse them. They reveal nothing a tenant owns; `/metrics` is for the cluster's Prometheus
only (the NetworkPolicy admits its namespace) and, with METRICS_TOKEN set, also needs that bearer token.
"""

import hmac
import logging
import os
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric

from foundation import metrics as declared_metrics
from foundation.api.errors import error_body
from foundation.logs import REQUEST_ID_HEADER, accept_request_id, reset_request_id, set_request_id
from foundation.metrics import HTTP_LATENCY, HTTP_REQUESTS
from foundation.redis import get_redis

logger = logging.getLogger(__name__)
DECLARED = [getattr(declared_metrics, name) for name in declared_metrics.__all__]
tracer = trace.get_tracer("lightsout")  # a no-op until OTEL_ENABLED installs a provider

LIVENESS_PATH, READINESS_PATH, LEGACY_HEALTH_PATH, METRICS_PATH = "/livez", "/readyz", "/healthz", "/metrics"


def liveness() -> HttpResponse:
    """The process answers: nothing else is checked (a database outage must not restart every pod)."""
    return JsonResponse({"status": "ok"})


def readiness() -> HttpResponse:
    """PostgreSQL and Redis answer; otherwise 503 with what failed, and the load balancer skips this pod."""
    failures = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure means not ready
        failures["postgresql"] = type(exc).__name__
    try:
        get_redis().ping()
    except Exception as exc:
        failures["redis"] = type(exc).__name__
    if failures:
        return JsonResponse({"status": "unavailable", "failed": failures}, status=503)
    return JsonResponse({"status": "ok"})


class QueueAndLedgerCollector:
    """Read at scrape time from Redis: Celery queue depth per queue, and the usage ledger's lag (stream entries not
    yet in PostgreSQL, and the age of the oldest)."""

    def collect(self):
        from billing import keys  # the wiring knows the apps; foundation does not
        from jobs.queues import Queue

        depth = GaugeMetricFamily("lightsout_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"])
        lag_entries = GaugeMetricFamily(
            "lightsout_ledger_lag_entries", "Usage stream entries in Redis not yet written to the PostgreSQL ledger."
        )
        lag_seconds = GaugeMetricFamily(
            "lightsout_ledger_lag_seconds", "Age of the oldest usage stream entry not yet in the ledger (0 when none)."
        )
        oldest = GaugeMetricFamily(
            "lightsout_queue_oldest_job_age_seconds",
            "Age of the oldest job still queued (not started), per queue.",
            labels=["queue"],
        )
        try:
            from django.db.models import Min

            from jobs.models import Job

            ages: dict[str, float] = {q.value: 0.0 for q in Queue}
            now = time.time()
            queued = Job.objects.filter(status=Job.Status.QUEUED).values("queue").annotate(oldest=Min("created_at"))
            for row in queued:
                ages[row["queue"]] = max(ages.get(row["queue"], 0.0), now - row["oldest"].timestamp())
            for queue, age in ages.items():
                oldest.add_metric([queue], age)
            with _broker_redis() as broker:
                for queue in [q.value for q in Queue]:
                    depth.add_metric([queue], float(broker.llen(queue)))
            redis = get_redis()
            stream = keys.usage_stream()
            lag_entries.add_metric([], float(redis.xlen(stream)))
            first = redis.xrange(stream, count=1)
            age = 0.0
            if first:
                entry_id = first[0][0]
                entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                age = max(0.0, time.time() - int(entry_id.split("-")[0]) / 1000)
            lag_seconds.add_metric([], age)
        except Exception:
            logger.exception("Collecting queue depth and ledger lag failed")
            return
        yield depth
        yield oldest
        yield lag_entries
        yield lag_seconds


@contextmanager
def _broker_redis():
    """A Redis client of the Celery broker (a pooled kombu connection's), whatever form its URL takes."""
    from controlplane.celery import app

    with app.pool.acquire(block=True, timeout=5) as conn:
        yield conn.default_channel.client


def metrics() -> HttpResponse:
    """Every process's metrics (summed from PROMETHEUS_MULTIPROC_DIR when set) plus the scrape-time ones. A declared
    metric nothing has observed yet is still listed (HELP and TYPE, no samples), so dashboards and alerts can tell
    "zero so far" from "not deployed"."""
    source = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(source)
    else:
        source.register(_Families(list(REGISTRY.collect())))
    source.register(QueueAndLedgerCollector())
    families = list(source.collect())
    present = {f.name for f in families}
    for declared in DECLARED:
        for family in declared.describe():
            if family.name not in present:
                families.append(Metric(family.name, family.documentation, family.type))
    registry = CollectorRegistry()
    registry.register(_Families(families))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class _Families:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return iter(self.families)


def _metrics_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class ProbeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if request.method not in ("GET", "HEAD"):
            return self.get_response(request)  # the URL map answers (404: nothing else lives at these paths)
        if path == LIVENESS_PATH:
            return liveness()
        if path in (READINESS_PATH, LEGACY_HEALTH_PATH):
            return readiness()
        if path == METRICS_PATH:
            if not _metrics_allowed(request):
                return JsonResponse(error_body(code="not_authenticated", message="Bearer token required."), status=401)
            return metrics()
        return self.get_response(request)


class RequestContextMiddleware:
    """A request id for every request (answered as x-request-id, carried by logs and Celery tasks) and the request's
    latency per route pattern and status."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        token = set_request_id(request_id)
        started = time.perf_counter()
        status = "500"
        try:
            with tracer.start_as_current_span(f"{request.method} {request.path_info}") as span:
                span.set_attribute("lightsout.request_id", request_id)
                response = self.get_response(request)
                status = str(response.status_code)
                span.set_attribute("http.status_code", response.status_code)
            response[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            match = getattr(request, "resolver_match", None)
            # The URL pattern, never the raw path (bounded label values); routers' regex anchors dropped.
            route = (
                "/" + match.route.replace("^", "").replace("$", "")
                if match is not None and match.route
                else "unmatched"
            )
            labels = {"route": route, "method": request.method, "status": status}
            HTTP_REQUESTS.labels(**labels).inc()
            HTTP_LATENCY.labels(**labels).observe(time.perf_counter() - started)
            reset_request_id(token)


def start_worker_metrics_server(port: int) -> None:
    """A Celery worker pod's own /metrics (on METRICS_PORT): every pool process's values from the pod's
    PROMETHEUS_MULTIPROC_DIR. Scrape-time series (queue depth, ledger lag) come from the web pods."""
    from prometheus_client import start_http_server

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    start_http_server(port, registry=registry)


def init_error_reporting_and_tracing() -> None:
    """Sentry when SENTRY_DSN is set, OpenTelemetry traces when OTEL_ENABLED is; both no-ops otherwise."""
    dsn = getattr(settings, "SENTRY_DSN", "")
    if dsn:
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration
        from sentry_sdk.integrations.django import DjangoIntegration

        sentry_sdk.init(
            dsn=dsn,
            environment=settings.SENTRY_ENVIRONMENT,
            traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
            send_default_pii=False,
            integrations=[DjangoIntegration(), CeleryIntegration()],
        )
    if getattr(settings, "OTEL_ENABLED", False):
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT and friends from the environment.
        provider = TracerProvider(resource=Resource.create({"service.name": settings.OTEL_SERVICE_NAME}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
