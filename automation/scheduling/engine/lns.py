"""Solution-guided large neighbourhood search (LNS) around CP-SAT, one thread beside CP-SAT's own search.

Why: on a few cores CP-SAT runs one full search and interleaves a dozen neighbourhood and local-search
subsolvers, most of them generic, in what time is left. This thread does only what shortens a schedule: it
frees a part of the best schedule found so far (a stretch of time, some machines, some orders, or the
operations around a critical path), keeps every other operation on its machine and in its order there, and
lets a one-thread CP-SAT re-optimise the freed part for a short slice. The kept constraints all hold in the
best schedule, which is also the slice's hint, so a slice never loses it, and whatever it returns is a schedule
of the full model, setups, calendars and materials included.

The share of operations freed adapts per neighbourhood, like CP-SAT's own: up after a slice that explored its
neighbourhood to the end (it was too easy), down after one that ran out of time. Like the tabu search, it yields
the cores while it finds nothing (``yielding.py``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence

from ortools.sat.python import cp_model

from automation.scheduling.engine.incumbent import Incumbent
from automation.scheduling.engine.model import ScheduleModel
from automation.scheduling.engine.problem import Assignment, OpKey
from automation.scheduling.engine.yielding import SLICE_S, YieldingSearch

Neighbourhood = Callable[[Sequence[Assignment], int, random.Random], set[OpKey]]

_MIN_FREED = 4
_EASIER, _HARDER = 1 / 1.25, 1.25


def time_window(schedule: Sequence[Assignment], size: int, rng: random.Random) -> set[OpKey]:
    """``size`` operations that start one after another: everything that happens in a stretch of time."""
    by_start = sorted(schedule, key=lambda a: (a.start, a.machine))
    first = rng.randrange(max(1, len(by_start) - size + 1))
    return {a.key for a in by_start[first : first + size]}


def machines(schedule: Sequence[Assignment], size: int, rng: random.Random) -> set[OpKey]:
    """All operations of randomly chosen machines, which may then be resequenced on them."""
    return _whole_groups(schedule, size, rng, group=lambda a: a.machine)


def orders(schedule: Sequence[Assignment], size: int, rng: random.Random) -> set[OpKey]:
    """All operations of randomly chosen orders, which may then move as a whole."""
    return _whole_groups(schedule, size, rng, group=lambda a: a.order)


def critical(schedule: Sequence[Assignment], size: int, rng: random.Random) -> set[OpKey]:
    """Operations close in time to one on a critical path, those on the path's machines first: only moving
    critical operations can shorten the schedule, and they need room around them to move into."""
    path = critical_path(schedule, rng)
    centre = rng.choice(path)
    path_machines = {a.machine for a in path}
    near = sorted(schedule, key=lambda a: (a.machine not in path_machines, abs(a.start - centre.start)))
    return {a.key for a in near[:size]}


def critical_path(schedule: Sequence[Assignment], rng: random.Random) -> list[Assignment]:
    """A chain of operations, each starting (setup included) right when the one before it on its machine or in
    its order ends, up to one that ends last; where both end right then, ``rng`` picks one."""
    ending_on: dict[tuple[str, int], Assignment] = {(a.machine, a.end): a for a in schedule}
    by_key = {a.key: a for a in schedule}
    path = [max(schedule, key=lambda a: a.end)]
    while True:
        current = path[-1]
        options = [b for b in (ending_on.get((current.machine, current.start - current.setup)),) if b is not None]
        before = by_key.get((current.order, current.op_index - 1))
        if before is not None and before.end == current.start:
            options.append(before)
        if not options:
            return path[::-1]
        path.append(rng.choice(options))


def _whole_groups(
    schedule: Sequence[Assignment], size: int, rng: random.Random, *, group: Callable[[Assignment], str]
) -> set[OpKey]:
    groups: dict[str, list[OpKey]] = defaultdict(list)
    for a in schedule:
        groups[group(a)].append(a.key)
    names = sorted(groups)
    rng.shuffle(names)
    freed: set[OpKey] = set()
    for name in names:
        if len(freed) >= size:
            break
        freed.update(groups[name])
    return freed


NEIGHBOURHOODS: tuple[Neighbourhood, ...] = (time_window, machines, orders, critical)


class Lns(YieldingSearch):
    """Improves ``incumbent`` until ``deadline`` or ``stop()``; runs in a thread of its own."""

    def __init__(
        self,
        built: ScheduleModel,
        objective: cp_model.LinearExprT,
        incumbent: Incumbent,
        *,
        seed: int = 0,
        neighbourhoods: Sequence[Neighbourhood] = NEIGHBOURHOODS,
        slice_s: float = SLICE_S,
    ) -> None:
        super().__init__(incumbent, slice_s=slice_s)
        self._built = built
        self._objective = objective
        self._rng = random.Random(seed)
        self._neighbourhoods = neighbourhoods
        # share of the operations freed in one slice, per neighbourhood: some settle a large share at once
        # (whole machines in a job shop), others already run out of time on a small one (whole orders)
        self._difficulty = dict.fromkeys(range(len(neighbourhoods)), 0.2)
        self._current: cp_model.CpSolver | None = None

    def stop(self) -> None:
        super().stop()
        if (solver := self._current) is not None:
            solver.stop_search()

    def _step(self, value: int, schedule: tuple[Assignment, ...], *, time_limit: float) -> None:
        choice = self._rng.randrange(len(self._neighbourhoods))
        size = max(_MIN_FREED, round(self._difficulty[choice] * len(schedule)))
        freed = self._neighbourhoods[choice](schedule, size, self._rng)
        model = self._built.model.clone()
        model.clear_hints()
        self._built.hint(schedule, model)
        self._built.keep(model, schedule, {a.key for a in schedule} - freed)
        model.add(self._objective <= value)
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.max_time_in_seconds = time_limit
        solver.parameters.random_seed = self._rng.randrange(2**31)
        self._current = solver
        if self._stopped:
            return
        status = solver.solve(model)
        self._current = None
        if status in (cp_model.OPTIMAL, cp_model.INFEASIBLE):
            self._difficulty[choice] = min(1.0, self._difficulty[choice] * _HARDER)
        else:
            self._difficulty[choice] = max(_MIN_FREED / max(1, len(schedule)), self._difficulty[choice] * _EASIER)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            found = round(solver.value(self._objective))
            if self._incumbent.offer(found, self._built.schedule(solver.value), same_value_replaces=True):
                self.improvements += found < value
