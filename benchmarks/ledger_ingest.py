"""Ledger ingestion: events per second into PostgreSQL through the real path, against a PostgreSQL-only peer.

Two pipelines run one after the other in the same run, each for `seconds`, each with the same number of
processes, into the same ledger table of a scratch database (created, migrated and dropped by the run):

* "redis-stream" (ours): producer processes call `billing.usage.usage_record_many` in batches of 500 (what the
  gateway does), holding back while more than MAX_BACKLOG_ENTRIES wait in the stream, and flusher processes
  run `billing.ledger.ledger_flush` (XREADGROUP, COPY into a staging table, INSERT ... ON CONFLICT DO NOTHING,
  XACK after commit) until the stream is empty.
* "postgresql-only" (the peer): processes insert each event with its own `INSERT ... ON CONFLICT DO NOTHING`
  in its own transaction, which is what recording usage on the request path without a buffer amounts to.

Figures: `ingested_per_s` counts events that reached the ledger from the start until the last one was committed
(the drain after the producers stop included); `in_window_per_s` counts rows committed during the window.
Every event has a unique idempotency key `<process>-<n>` and the quantity `n % 97 + 1`; at the end the run
checks that the ledger holds each key exactly once, with that quantity, and nothing else (zero loss, zero
duplicates). Redis keys live under a scratch prefix that is deleted afterwards.

    .venv/bin/python -m controlplane.embedded --dir .cache/embedded-bench .venv/bin/python -m benchmarks.ledger_ingest
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

REPO_ROOT = Path(__file__).resolve().parent.parent
BATCH = 500
METER = "inference.output_tokens.small"
ATTRIBUTES = {"model": "smollm2-135m", "adapter": "line-3"}
# Producers hold back while this many stream entries (200 events each) wait, so the figure is what the whole
# pipeline sustains rather than how fast Redis can queue.
MAX_BACKLOG_ENTRIES = 100


def _quantity(n: int) -> int:
    return n % 97 + 1


# --- child processes -------------------------------------------------------------------------------------------


def _django(env: dict[str, str]) -> None:
    os.environ.update(env)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()


def _prepare(env: dict[str, str], results) -> None:
    """Migrate the scratch database and create the two organisations (ours, the peer's)."""
    _django(env)
    from django.core.management import call_command

    from tenants.models import User
    from tenants.services import organization_create

    call_command("migrate", verbosity=0)
    owner = User.objects.create_user(email="bench@lightsout.example")
    results.put(
        [
            str(organization_create(name=name, slug=name, country="DE", region="local", created_by=owner).pk)
            for name in ("bench-stream", "bench-peer")
        ]
    )


def _produce(env: dict[str, str], organization_id: str, name: str, seconds: float, ready, start, results) -> None:
    _django(env)
    from billing.ledger import ledger_backlog
    from billing.usage import Usage, usage_record_many

    ready.put(name)
    start.wait()
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        if ledger_backlog() > MAX_BACKLOG_ENTRIES:
            time.sleep(0.002)
            continue
        usage_record_many(
            [Usage(organization_id, METER, _quantity(i), f"{name}-{i}", ATTRIBUTES) for i in range(n, n + BATCH)]
        )
        n += BATCH
    results.put((name, n))


def _flush(env: dict[str, str], ready, start, stop) -> None:
    _django(env)
    from billing.ledger import ledger_backlog, ledger_flush

    ready.put("flusher")
    start.wait()
    while not (stop.is_set() and ledger_backlog() == 0):
        if ledger_flush(max_seconds=1.0).read == 0:
            time.sleep(0.01)


def _insert_per_event(
    env: dict[str, str], organization_id: str, name: str, seconds: float, ready, start, results
) -> None:
    with psycopg.connect(env["BENCH_PSYCOPG_URL"], autocommit=True) as connection:
        ready.put(name)
        start.wait()
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            connection.execute(
                "INSERT INTO billing_usageevent (organization_id, meter, quantity, idempotency_key, occurred_at, "
                "attributes, reason, recorded_at) VALUES (%s, %s, %s, %s, now(), %s, '', now()) "
                "ON CONFLICT (organization_id, idempotency_key) DO NOTHING",
                (organization_id, METER, _quantity(n), f"{name}-{n}", json.dumps(ATTRIBUTES)),
            )
            n += 1
    results.put((name, n))


# --- the run ---------------------------------------------------------------------------------------------------


def _ledger_rows(url: str, organization_id: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM billing_usageevent WHERE organization_id = %s", (organization_id,)
        ).fetchone()
        assert row is not None  # an aggregate answers one row
        return row[0]


def _verify(url: str, organization_id: str, produced: dict[str, int]) -> dict:
    """Every produced key once, with its quantity, and nothing else."""
    with psycopg.connect(url) as connection:
        totals = connection.execute(
            "SELECT count(*), count(DISTINCT idempotency_key), "
            "count(*) FILTER (WHERE quantity <> split_part(idempotency_key, '-', 2)::bigint %% 97 + 1), "
            "coalesce(sum(quantity), 0) FROM billing_usageevent WHERE organization_id = %s",
            (organization_id,),
        ).fetchone()
        assert totals is not None  # an aggregate answers one row
        rows, keys, wrong, total = totals
        per_process: dict[str, int] = dict(
            connection.execute(
                "SELECT split_part(idempotency_key, '-', 1), count(*) FROM billing_usageevent "
                "WHERE organization_id = %s GROUP BY 1",
                (organization_id,),
            ).fetchall()
        )
    expected = sum(produced.values())
    expected_sum = sum(_quantity(i) for count in produced.values() for i in range(count))
    return {
        "produced": expected,
        "ledger_rows": rows,
        "distinct_keys": keys,
        "wrong_quantity": wrong,
        "quantity_sum_expected": expected_sum,
        "quantity_sum_ledger": int(total),
        "exact": rows == keys == expected and wrong == 0 and total == expected_sum and per_process == produced,
    }


def _start_together(ctx, children, ready, start) -> float:
    """Start the clock once every child has set itself up (importing Django takes seconds on a busy machine)."""
    for child in children:
        child.start()
    for _ in children:
        ready.get(timeout=300)
    start.set()
    return time.monotonic()


def _pipeline_ours(ctx, env, url, organization_id, seconds, producers, flushers) -> dict:
    ready, start, stop, results = ctx.Queue(), ctx.Event(), ctx.Event(), ctx.Queue()
    children = [ctx.Process(target=_flush, args=(env, ready, start, stop)) for _ in range(flushers)]
    makers = [
        ctx.Process(target=_produce, args=(env, organization_id, f"s{p}", seconds, ready, start, results))
        for p in range(producers)
    ]
    began = _start_together(ctx, children + makers, ready, start)
    time.sleep(seconds)
    in_window = _ledger_rows(url, organization_id)
    produced = dict(results.get(timeout=120) for _ in makers)
    deadline = time.monotonic() + 600
    while _ledger_rows(url, organization_id) < sum(produced.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    elapsed = time.monotonic() - began
    stop.set()
    for child in makers + children:
        child.join(timeout=600)
    verification = _verify(url, organization_id, produced)
    return {
        "pipeline": "redis-stream (usage_record_many + ledger_flush)",
        "processes": producers + flushers,
        "producers": producers,
        "flushers": flushers,
        "window_s": seconds,
        "drain_s": round(elapsed - seconds, 2),
        "recorded_per_s": round(sum(produced.values()) / seconds),
        "in_window_per_s": round(in_window / seconds),
        "ingested_per_s": round(verification["ledger_rows"] / elapsed),
        **verification,
    }


def _pipeline_peer(ctx, env, url, organization_id, seconds, processes) -> dict:
    ready, start, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    env = {**env, "BENCH_PSYCOPG_URL": url}
    children = [
        ctx.Process(target=_insert_per_event, args=(env, organization_id, f"p{p}", seconds, ready, start, results))
        for p in range(processes)
    ]
    began = _start_together(ctx, children, ready, start)
    produced = dict(results.get(timeout=seconds + 120) for _ in children)
    for child in children:
        child.join(timeout=60)
    elapsed = time.monotonic() - began
    verification = _verify(url, organization_id, produced)
    return {
        "pipeline": "postgresql-only (one INSERT per event, own transaction)",
        "processes": processes,
        "window_s": seconds,
        "ingested_per_s": round(verification["ledger_rows"] / elapsed),
        "in_window_per_s": round(verification["ledger_rows"] / seconds),
        **verification,
    }


def run(seconds: float = 60, producers: int = 1, flushers: int = 1) -> dict:
    """Run both pipelines for `seconds` each in a scratch database; return the figures and the verification."""
    base_url, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    scratch = f"lightsout_bench_{uuid.uuid4().hex[:10]}"
    url = urlunsplit(urlsplit(base_url)._replace(path=f"/{scratch}"))
    prefix = f"bench-{scratch}"
    env = {
        "DATABASE_URL": url,
        "BILLING_REDIS_PREFIX": prefix,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "controlplane.settings.local"),
    }
    ctx = mp.get_context("spawn")  # each child sets Django up for itself
    with psycopg.connect(base_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        results = ctx.Queue()
        prepare = ctx.Process(target=_prepare, args=(env, results))
        prepare.start()
        ours_org, peer_org = results.get(timeout=300)
        prepare.join()
        load_before = os.getloadavg()
        ours = _pipeline_ours(ctx, env, url, ours_org, seconds, producers, flushers)
        peer = _pipeline_peer(ctx, env, url, peer_org, seconds, producers + flushers)
        return {
            "benchmark": "ledger_ingest",
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "ours": ours,
            "peer": peer,
            "speedup": round(ours["ingested_per_s"] / max(1, peer["ingested_per_s"]), 1),
            "floor_per_s": 20_000,
            "meets_floor": ours["ingested_per_s"] >= 20_000 and ours["exact"],
        }
    finally:
        client = redis.Redis.from_url(redis_url)
        doomed: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=10_000):
            doomed.append(key)
            if len(doomed) == 10_000:
                client.unlink(*doomed)
                doomed.clear()
        if doomed:
            client.unlink(*doomed)
        with psycopg.connect(base_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--producers", type=int, default=1)
    parser.add_argument("--flushers", type=int, default=1)
    args = parser.parse_args(argv)
    result = run(seconds=args.seconds, producers=args.producers, flushers=args.flushers)
    print(json.dumps(result, indent=2))
    return 0 if result["ours"]["exact"] and result["peer"]["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
