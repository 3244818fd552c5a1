"""Prometheus metrics of every process (web, gateway, workers), multi-process safe.

With PROMETHEUS_MULTIPROC_DIR set (the manifests set it to an emptyDir per pod, `make run` to a directory under
.cache) prometheus_client keeps each process's values in memory-mapped files there and the `/metrics` view sums
them (controlplane.metrics_view). Without it, each process exposes its own. Series that are read at scrape time
(queue depth, ledger lag) are not kept here: the view collects them from Redis when scraped.

Label values are bounded: routes are URL patterns, never raw paths; tenants are organisation ids; models are base
model names.
"""

from prometheus_client import Counter, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
GATEWAY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
JOB_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600)

HTTP_REQUESTS = Counter(
    "lightsout_http_requests_total", "HTTP requests answered, per route and status.", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "lightsout_http_request_duration_seconds",
    "Time to answer an HTTP request, per route and status.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
GATEWAY_ADDED_LATENCY = Histogram(
    "lightsout_gateway_added_latency_seconds",
    "Time the gateway adds to a completion (total minus the upstream's), per base model.",
    ["model"],
    buckets=GATEWAY_BUCKETS,
)
GATEWAY_UPSTREAM_LATENCY = Histogram(
    "lightsout_gateway_upstream_latency_seconds",
    "Time the vLLM server took to answer a completion, per base model.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
GATEWAY_TOKENS = Counter(
    "lightsout_gateway_tokens_total", "Tokens served, per organisation and kind (input, output).", ["tenant", "kind"]
)
JOB_DURATION = Histogram(
    "lightsout_job_duration_seconds",
    "Wall time of a job attempt on a worker, per queue, kind and outcome.",
    ["queue", "kind", "outcome"],
    buckets=JOB_BUCKETS,
)
ADAPTER_LOADS = Counter("lightsout_adapter_loads_total", "LoRA adapters loaded onto vLLM servers.", ["server"])
ADAPTER_EVICTIONS = Counter(
    "lightsout_adapter_evictions_total", "LoRA adapters unloaded from vLLM servers to make room.", ["server"]
)
WEBHOOK_FAILURES = Counter(
    "lightsout_webhook_failures_total",
    "Webhooks that failed: received ones refused (stripe) or outgoing deliveries that failed (maintenance).",
    ["kind"],
)

__all__ = [
    "ADAPTER_EVICTIONS",
    "ADAPTER_LOADS",
    "GATEWAY_ADDED_LATENCY",
    "GATEWAY_TOKENS",
    "GATEWAY_UPSTREAM_LATENCY",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "JOB_DURATION",
    "WEBHOOK_FAILURES",
]
