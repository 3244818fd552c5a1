"""Fix-and-optimise neighbourhood search for ``objective="cost"`` on plans too large for one CP-SAT model.

The full cost model prices every operation at every start slot (an element constraint per capable machine), so
a plant of 2,000 operations over four weeks of hourly slots is millions of literals before CP-SAT begins. This
search never builds that: each slice frees a part of the best plan (a stretch of time, some machines, some
orders, or the operations that cost most in energy, overtime or lateness), freezes every other operation at its
machine and start, and lets a one-thread CP-SAT re-plan the freed part together with the whole purchase plan
(purchases are always free). Frozen operations cost constants, so a slice's model is as small as its freed part.
The best plan is the slice's hint and stays feasible under the freeze, so a slice never loses it.

The share of operations freed adapts per neighbourhood as in ``lns.py``: up after a slice that settled its
neighbourhood, down after one that ran out of time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

from ortools.sat.python import cp_model

from automation.scheduling.engine.costmodel import CostModel, EnergyRates
from automation.scheduling.engine.costs import MINUTES_PER_DAY, Purchase
from automation.scheduling.engine.incumbent import Incumbent
from automation.scheduling.engine.lns import machines, orders, time_window
from automation.scheduling.engine.problem import Assignment, FrozenOp, OpKey, Problem

Neighbourhood = Callable[[Sequence[Assignment], int, random.Random], set[OpKey]]

SLICE_S = 3.0
_MIN_FREED = 4
_EASIER, _HARDER = 1 / 1.25, 1.25


def frozen_plan_model(
    problem: Problem,
    schedule: Sequence[Assignment],
    *,
    rates: EnergyRates,
    now: int,
    free: set[OpKey] | frozenset[OpKey] = frozenset(),
    free_orders: set[str] | frozenset[str] = frozenset(),
) -> CostModel:
    """The cost model with every operation of ``schedule`` but ``free`` frozen where it is, and every declined
    order but ``free_orders`` kept declined."""
    scheduled = {a.order for a in schedule}
    declined = [o.id for o in problem.orders if o.id not in scheduled and o.id not in free_orders]
    frozen = [FrozenOp(a.order, a.op_index, a.machine, a.start) for a in schedule if a.key not in free]
    return CostModel(problem, frozen=frozen, now=now, rates=rates, declined=declined)


def price(
    problem: Problem,
    schedule: Sequence[Assignment],
    *,
    rates: EnergyRates,
    now: int,
    time_limit_s: float,
    workers: int = 1,
) -> tuple[int, tuple[Purchase, ...]] | None:
    """The cost of ``schedule`` in thousandths with the cheapest purchases for it: a lot-sizing problem."""
    built = frozen_plan_model(problem, schedule, rates=rates, now=now)
    built.model.minimize(built.total)
    built.hint(schedule)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers
    status = solver.solve(built.model)
    if solver.status_name(status) not in ("OPTIMAL", "FEASIBLE"):
        return None
    return round(solver.objective_value), built.purchases(solver.value)


class CostLns:
    """Improves ``incumbent`` until a deadline or ``stop()``, in the calling thread."""

    def __init__(
        self,
        problem: Problem,
        incumbent: Incumbent,
        *,
        rates: EnergyRates,
        now: int = 0,
        seed: int = 0,
        slice_s: float = SLICE_S,
    ) -> None:
        self._problem = problem
        self._incumbent = incumbent
        self._rates = rates
        self._now = now
        self._rng = random.Random(seed)
        self._slice_s = slice_s
        self._neighbourhoods: tuple[Neighbourhood, ...] = (time_window, machines, orders, self._costly)
        self._difficulty = dict.fromkeys(range(len(self._neighbourhoods)), 0.03)
        self._stopped = False
        self._current: cp_model.CpSolver | None = None
        self._deadline = 0.0
        self.slices = 0
        self.improvements = 0

    def stop(self) -> None:
        self._stopped = True
        if (solver := self._current) is not None:
            solver.stop_search()

    def run(self, deadline: float, should_stop: Callable[[], bool] | None = None) -> bool:
        """Search until ``deadline``; True when ``should_stop`` ended it."""
        self._deadline = deadline
        while not self._stopped and (left := deadline - time.monotonic()) > 0.2:
            if should_stop is not None and should_stop():
                return True
            best = self._incumbent.best(timeout=0)
            if best is None:
                return False
            self._step(best[0], best[1], time_limit=min(left, self._slice_s))
            self.slices += 1
        return False

    def _step(self, value: int, schedule: tuple[Assignment, ...], *, time_limit: float) -> None:
        choice = self._rng.randrange(len(self._neighbourhoods))
        total_ops = sum(len(self._problem.routing(o.id)) for o in self._problem.orders)
        size = max(_MIN_FREED, round(self._difficulty[choice] * total_ops))
        freed = self._neighbourhoods[choice](schedule, size, self._rng) if schedule else set()
        scheduled = {a.order for a in schedule}
        declined = [o.id for o in self._problem.orders if o.id not in scheduled]
        free_orders = set(self._rng.sample(declined, min(len(declined), 2))) if declined else set()
        free_orders |= {key[0] for key in freed}
        building = time.monotonic()
        built = frozen_plan_model(
            self._problem, schedule, rates=self._rates, now=self._now, free=freed, free_orders=free_orders
        )
        # on a loaded machine a large plan takes seconds to build: give the solve at least as long
        time_limit = max(time_limit, min(self._deadline - time.monotonic(), time.monotonic() - building))
        built.model.minimize(built.total)
        built.hint(schedule)
        built.model.add(built.total <= value)
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.max_time_in_seconds = time_limit
        solver.parameters.random_seed = self._rng.randrange(2**31)
        self._current = solver
        if self._stopped:
            return
        status = solver.status_name(solver.solve(built.model))
        self._current = None
        if status in ("OPTIMAL", "INFEASIBLE"):
            self._difficulty[choice] = min(1.0, self._difficulty[choice] * _HARDER)
        else:
            self._difficulty[choice] = max(_MIN_FREED / max(1, total_ops), self._difficulty[choice] * _EASIER)
        if status in ("OPTIMAL", "FEASIBLE"):
            found = round(solver.objective_value)
            if self._incumbent.offer(found, built.schedule(solver.value), same_value_replaces=True):
                self.improvements += found < value

    def _costly(self, schedule: Sequence[Assignment], size: int, rng: random.Random) -> set[OpKey]:
        """Operations that cost most to run where they are (energy, overtime), and those of late orders."""
        cost = self._problem.cost
        assert cost is not None
        finish: dict[str, int] = {}
        for a in schedule:
            finish[a.order] = max(finish.get(a.order, 0), a.end)

        def score(a: Assignment) -> float:
            due = self._problem.order(a.order).due
            terms = cost.terms.get(a.order)
            late = 0.0
            if due is not None and terms is not None and finish[a.order] > due:
                late = terms.late_penalty_per_day * 1000 * (1 + (finish[a.order] - due) // MINUTES_PER_DAY)
            return (self._rates.millis(a.machine, a.start, a.end - a.start) + late) * rng.uniform(0.5, 1.5)

        ranked = sorted(schedule, key=score, reverse=True)
        return {a.key for a in ranked[:size]}
