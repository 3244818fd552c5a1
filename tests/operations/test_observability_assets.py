"""The Grafana dashboard and the Prometheus alert rules in infra/observability refer only to series Lightsout
exposes (a renamed metric would otherwise leave a blank panel or an alert that never fires)."""

import json
import re
from pathlib import Path

import yaml

from foundation import metrics

ROOT = Path(__file__).resolve().parents[2] / "infra" / "observability"
SCRAPE_TIME = {
    "lightsout_queue_depth",
    "lightsout_queue_oldest_job_age_seconds",
    "lightsout_ledger_lag_entries",
    "lightsout_ledger_lag_seconds",
}


def _exposed() -> set[str]:
    names = set(SCRAPE_TIME)
    for attribute in metrics.__all__:
        for family in getattr(metrics, attribute).describe():
            base = family.name
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
            names |= {base + s for s in suffixes}
    return names


def _series(expr: str) -> set[str]:
    return set(re.findall(r"\blightsout_[a-z_]+", expr))


def test_alert_rules_cover_the_issue_and_use_exposed_series():
    rules = [r for g in yaml.safe_load((ROOT / "alerts.yaml").read_text())["groups"] for r in g["rules"]]
    used = set().union(*(_series(r["expr"]) for r in rules))
    assert used and used <= _exposed(), used - _exposed()
    # Error rate, latency, queue age and ledger lag, as the operators asked.
    for needed in (
        "lightsout_http_requests_total",
        "lightsout_http_request_duration_seconds_bucket",
        "lightsout_queue_oldest_job_age_seconds",
        "lightsout_ledger_lag_seconds",
    ):
        assert needed in used, needed
    assert all(r["labels"]["severity"] in {"page", "ticket"} and r["annotations"]["summary"] for r in rules)


def test_dashboard_panels_query_exposed_series():
    dashboard = json.loads((ROOT / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set().union(*(_series(e) for e in exprs))
    assert used <= _exposed(), used - _exposed()
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert {s.removesuffix("_total").removesuffix("_bucket").removesuffix("_count") for s in used} >= {
        "lightsout_http_requests",
        "lightsout_gateway_added_latency_seconds",
        "lightsout_gateway_tokens",
        "lightsout_queue_depth",
        "lightsout_job_duration_seconds",
        "lightsout_ledger_lag_seconds",
        "lightsout_adapter_evictions",
        "lightsout_webhook_failures",
    }
