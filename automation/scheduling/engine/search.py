"""Run the full CP-SAT search and a local search side by side on one model, sharing the best schedule.

The full search (CP-SAT's own portfolio, with the threads the caller gives it) proves bounds, settles small
problems and finds many schedules itself; the local search, one more thread, keeps improving the best schedule
either found, and yields the cores while it finds nothing. On a classic job shop it is a tabu search
(``tabu.py``), elsewhere a large neighbourhood search (``lns.py``). Both searches report into one
``Incumbent``, which passes each strictly better schedule on. The solve ends at the time limit, when a stop is
requested, or as soon as the best schedule meets the proven bound.

CP-SAT takes no new solution while it runs, so the local search's finds do not tighten the full search's own
upper bound; restarting the full search from them every few seconds was tried and measured no better.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ortools.sat.python import cp_model

from automation.scheduling.engine.incumbent import Incumbent
from automation.scheduling.engine.lns import Lns
from automation.scheduling.engine.model import ScheduleModel
from automation.scheduling.engine.problem import Problem
from automation.scheduling.engine.tabu import Tabu
from automation.scheduling.engine.yielding import YieldingSearch

_POLL_S = 0.1  # how often ``should_stop`` is asked while the searches run
LOCAL_THREADS = 1  # on top of the full search's threads; more would mostly take time from it on few cores


@dataclass(frozen=True)
class Outcome:
    status: int  # the full search's CP-SAT status
    cancelled: bool


def search(
    built: ScheduleModel,
    objective: cp_model.LinearExprT,
    incumbent: Incumbent,
    *,
    time_limit_s: float,
    workers: int,
    should_stop: Callable[[], bool] | None,
    classic_job_shop: Problem | None = None,
    local_threads: int = LOCAL_THREADS,
) -> Outcome:
    """Search until the time limit, a stop, or a proven optimum; the best schedule is left in ``incumbent``.

    ``workers``: the full search's threads, 0 for one per core (CP-SAT's own default). ``classic_job_shop``:
    the problem, when it is one (``tabu.is_classic_job_shop``) and ``objective`` is its makespan.
    """
    deadline = time.monotonic() + time_limit_s
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers
    helpers: list[YieldingSearch] = [
        Tabu(classic_job_shop, incumbent, seed=seed)
        if classic_job_shop is not None
        else Lns(built, objective, incumbent, seed=seed)
        for seed in range(local_threads)
    ]
    control = _Control(solver, helpers, incumbent, should_stop)
    solver.best_bound_callback = control.bound
    threads = [threading.Thread(target=h.run, args=(deadline,), daemon=True, name="local") for h in helpers]
    threads.append(threading.Thread(target=control.watch, daemon=True, name="should-stop"))
    for thread in threads:
        thread.start()
    try:
        status = solver.solve(built.model, _Progress(built, incumbent, control))
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            incumbent.raise_bound(round(solver.best_objective_bound))  # newer than the last callback's
    finally:
        control.stop()
        for thread in threads:
            thread.join()
    return Outcome(status, control.cancelled.is_set())


class _Control:
    """Stops every search at once: on a stop request, when the full search ends, or once the best is proven."""

    def __init__(
        self,
        solver: cp_model.CpSolver,
        helpers: list[YieldingSearch],
        incumbent: Incumbent,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self._solver = solver
        self._helpers = helpers
        self._incumbent = incumbent
        self._should_stop = should_stop
        self.cancelled = threading.Event()
        self._done = threading.Event()

    def requested(self) -> bool:
        if self._should_stop is not None and not self.cancelled.is_set() and self._should_stop():
            self.cancelled.set()
        return self.cancelled.is_set()

    def watch(self) -> None:
        while not self._done.wait(_POLL_S):
            # proven also covers the tabu search's proofs, which CP-SAT does not hear of; repeated on purpose:
            # a stop requested before CP-SAT has started its search is otherwise lost
            if self.requested() or self._incumbent.proven:
                self.stop(keep_watching=True)

    def bound(self, bound: float) -> None:
        """CP-SAT's best-bound callback: the best schedule, maybe the local search's, may be proven optimal."""
        self._incumbent.raise_bound(round(bound))
        if self._incumbent.proven:
            self.stop(keep_watching=True)

    def stop(self, *, keep_watching: bool = False) -> None:
        if not keep_watching:
            self._done.set()
        self._solver.stop_search()
        for helper in self._helpers:
            helper.stop()


class _Progress(cp_model.CpSolverSolutionCallback):  # type: ignore[misc]  # ortools is not followed: an Any base
    def __init__(self, built: ScheduleModel, incumbent: Incumbent, control: _Control) -> None:
        super().__init__()
        self._built = built
        self._incumbent = incumbent
        self._control = control

    def on_solution_callback(self) -> None:
        self._incumbent.raise_bound(round(self.best_objective_bound))
        self._incumbent.offer(round(self.objective_value), lambda: self._built.schedule(self.value))
        if self._control.requested() or self._incumbent.proven:
            self._control.stop(keep_watching=True)
