"""Gateway key cache under a flood of random API keys: entries and memory, bounded (ours) against unbounded.

Peer: the gateway's key cache before issue #22, a dictionary that never evicts. The issue's published figure for it:
200,000 requests with random keys left 200,001 entries, about 46 MB, after the TTL.

Protocol (stated before the numbers, run once on the machine's 2 shared cores): one event loop, one `TtlCache` with
the gateway's TTL (30 s), `count` cold lookups of distinct random keys, each keyed as the gateway keys them (the
SHA-256 hex of a `lo_live_` + 43-character secret) and loading `None` (what an unknown key's lookup returns). The
same code path runs twice: with the default bound (GATEWAY_CACHE_MAX_ENTRIES = 10,000) and with no effective bound
(max_entries = 10^9, the old behaviour). Figures: entries held at the end, memory held by the cache (tracemalloc,
current after a full collection, minus the baseline before the flood), and mean microseconds per lookup (loader
included, under tracemalloc, which slows every allocation: compare the rows, not the absolute figure). The database
is not involved: each lookup the real gateway makes also costs one query, and those are now limited per client
address (GATEWAY_KEY_LOOKUPS_PER_MINUTE, 120 a minute); that limit is proven by
tests/inference/test_gateway_abuse.py, not measured here.

    make bench BENCH_ARGS="gateway_key_flood -- --count 200000"
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import os
import secrets
import sys
import time
import tracemalloc
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "benchmarks" / "results" / "gateway_key_flood.md"


async def _flood(cache, count: int) -> float:
    async def load():
        return None

    started = time.perf_counter()
    for _ in range(count):
        key_hash = hashlib.sha256(("lo_live_" + secrets.token_urlsafe(32)).encode()).hexdigest()
        await cache.get(key_hash, load)
    return (time.perf_counter() - started) / count * 1e6


def _measure(max_entries: int, count: int) -> dict:
    from inference.gateway.caches import TtlCache

    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    cache: TtlCache[str, None] = TtlCache(ttl_s=30, max_entries=max_entries)
    per_lookup_us = asyncio.run(_flood(cache, count))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    return {"entries": len(cache), "mib": held / 2**20, "us": per_lookup_us}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings.test")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    rows = [
        ("bounded (ours, 10,000)", _measure(10_000, args.count)),
        ("unbounded (before #22)", _measure(10**9, args.count)),
    ]
    table = [
        "| cache | lookups | entries held | memory held (MiB) | µs per lookup |",
        "| --- | ---: | ---: | ---: | ---: |",
        *[f"| {name} | {args.count:,} | {r['entries']:,} | {r['mib']:.1f} | {r['us']:.1f} |" for name, r in rows],
    ]
    print("\n".join(table))
    doc = __doc__.split("\n    .venv")[0].strip()
    RESULTS.write_text(
        f"# Gateway key cache under a flood of random keys\n\n{doc}\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, one run:\n\n" + "\n".join(table) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
