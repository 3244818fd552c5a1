"""Running a scheduling job inside a Celery worker: solve the run's snapshot, report, record, bill.

The solver calls back on every better schedule from one of its search threads (CP-SAT's, or its neighbourhood
search's). Those callbacks only put the figures on a queue; one reporter thread writes them as job events (level
`metrics`) and moves the time-based progress, so the search never waits on the database and no solver thread
opens a connection of its own.
"""

import logging
import queue
import threading
import time
from typing import cast

from django.db import connection

from jobs.runner import JobCancelled, JobContext, JobFailure

from . import runs
from .conf import solver_workers
from .engine import MixWeights, ProblemError, solve
from .engine.robust import solve_robust
from .engine.scenarios import apply_scenario
from .engine.solver import Objective
from .metering import solver_seconds_record
from .models import Run
from .snapshot import changes_from_json, frozen_from_json, problem_from_json, schedule_from_json

logger = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0
_DONE = object()


class SolutionReporter(threading.Thread):
    """Writes each better schedule's figures as a metrics event, and progress as the share of the time limit."""

    def __init__(self, ctx: JobContext, *, time_limit_s: float):
        super().__init__(daemon=True, name=f"solutions-{ctx.job.id}")
        self.ctx = ctx
        self.time_limit_s = time_limit_s
        self.started = time.monotonic()
        self.solutions = 0
        self._queue: queue.Queue = queue.Queue()

    def solution(self, objective: int, bound: int, schedule, wall_time: float) -> None:
        """The solver's `on_solution`: called from a search thread, so it only enqueues."""
        self._queue.put((objective, bound, wall_time))

    def finish(self) -> None:
        """Write what is still queued, then stop; events all land before the job's final one."""
        self._queue.put(_DONE)
        self.join(timeout=30)

    def run(self) -> None:
        last_progress = 0.0
        try:
            while True:
                try:
                    item = self._queue.get(timeout=PROGRESS_EVERY_S)
                except queue.Empty:
                    item = None
                if item is _DONE:
                    return
                if item is not None:
                    self._record(*item)
                if time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                    elapsed = time.monotonic() - self.started
                    self.ctx.progress(min(99, 100 * elapsed / self.time_limit_s))
                    last_progress = time.monotonic()
        except Exception:
            logger.exception("Reporting the solutions of job %s failed", self.ctx.job.id)
        finally:
            connection.close()  # this thread's own connection

    def _record(self, objective: int, bound: int, wall_time: float) -> None:
        self.solutions += 1
        gap = (objective - bound) / objective if objective else 0.0
        self.ctx.metrics(
            f"Better schedule: objective {objective}, bound {bound}, gap {100 * gap:.2f} %.",
            objective=objective,
            bound=bound,
            gap=gap,
            wall_time=round(wall_time, 3),
        )


def run_execute(ctx: JobContext) -> dict:
    """The `scheduling.optimize` job. Ends succeeded, cancelled (with the best schedule so far) or failed with
    `infeasible` (and the diagnosis), `no_solution_in_time` or `invalid_problem`."""
    run = Run.objects.select_related("parent").get(job_id=ctx.job.id, organization_id=ctx.organization_id)
    try:
        problem = problem_from_json(run.problem)
    except ProblemError as exc:
        raise JobFailure(
            f"The problem is malformed: {exc.issues[0]}",
            code="invalid_problem",
            result={"run_id": str(run.id), "issues": exc.issues},
        ) from exc
    frozen = frozen_from_json(run.frozen)
    hint = schedule_from_json(run.parent.schedule) if run.parent and run.parent.schedule else None
    operations = sum(len(problem.routing(o.id)) for o in problem.orders)
    frozen_note = f", {len(frozen)} operations frozen" if frozen else ""
    ctx.event(
        f"Solving {len(problem.orders)} orders ({operations} operations) on {len(problem.machines)} machines "
        f"for {run.objective}, at most {run.time_limit_s} s{frozen_note}."
    )
    reporter = SolutionReporter(ctx, time_limit_s=run.time_limit_s)
    reporter.start()
    robust_report = None
    try:
        if run.robust and run.robust.get("scenarios"):
            scenarios = [apply_scenario(problem, changes_from_json(s)) for s in run.robust["scenarios"]]
            ctx.event(f"Robust plan: lowest expected cost over {len(scenarios)} price scenarios.")
            result, robust_report = solve_robust(
                problem,
                scenarios,
                time_limit_s=run.time_limit_s,
                workers=solver_workers(),
                frozen=frozen,
                now=run.now_minute,
                on_solution=reporter.solution,
                should_stop=ctx.should_stop,
                hint=hint,
            )
        else:
            result = solve(
                problem,
                objective=cast(Objective, run.objective),  # the model's choices are the engine's objectives
                weights=MixWeights(**run.weights),
                time_limit_s=run.time_limit_s,
                workers=solver_workers(),
                frozen=frozen,
                now=run.now_minute,
                on_solution=reporter.solution,
                should_stop=ctx.should_stop,
                hint=hint,
            )
    except ProblemError as exc:  # frozen operations that do not fit the problem
        raise JobFailure(
            f"The problem is malformed: {exc.issues[0]}",
            code="invalid_problem",
            result={"run_id": str(run.id), "issues": exc.issues},
        ) from exc
    finally:
        reporter.finish()
    if result.schedule and reporter.solutions == 0:
        # The solver had no time to improve on its starting schedule (the dispatching rule's, or the plan
        # being repaired), so that schedule is the result; it is reported like any other.
        ctx.metrics(
            "Starting schedule kept: the solver found nothing better in time.",
            objective=result.objective,
            bound=result.best_bound,
            gap=result.gap,
            wall_time=round(result.wall_time, 3),
        )
    _bill(ctx, run, result.wall_time, result.status)
    outcome = runs.run_record_outcome(run=run, problem=problem, result=result, robust=robust_report)
    if result.status == "infeasible":
        first = result.findings[0].message if result.findings else "no reason found"
        raise JobFailure(
            f"No schedule exists: {first}"
            + (f" (and {len(result.findings) - 1} more findings)" if len(result.findings) > 1 else ""),
            code="infeasible",
            result=outcome,
        )
    if result.status == "no_solution_in_time":
        raise JobFailure(
            f"No schedule was found within {run.time_limit_s} s; allow more time.",
            code="no_solution_in_time",
            result=outcome,
        )
    if result.status == "cancelled":
        raise JobCancelled(outcome)
    return outcome


def _bill(ctx: JobContext, run: Run, seconds: float, status: str) -> None:
    try:
        solver_seconds_record(
            organization_id=ctx.organization_id,
            job_id=ctx.job.id,
            seconds=seconds,
            attributes={"run_id": str(run.id), "kind": run.kind, "objective": run.objective, "status": status},
        )
    except Exception:
        # The schedule is worth more than failing the job over a usage write; the log and the event say so.
        logger.exception("Recording solver seconds of job %s failed", ctx.job.id)
        ctx.event(f"Could not record {seconds:.1f} solver seconds for billing.", level="warning")
