"""Tabu search beside CP-SAT for the classic job shop: one machine per operation, makespan, nothing else.

On the classic job shop a tabu search on the disjunctive graph (``tabu_kernel.py``) improves a schedule far
faster than re-optimising parts of it with CP-SAT: in 10 s on one core it took la38 to its optimum (1196), la27
to 1235-1240 and la29 to 1162-1172, as well as or better than the neighbourhood search (``lns.py``) did beside
CP-SAT in a minute on two cores (means 1199.6, 1245.3 and 1171.3). It does not know calendars, changeovers,
materials, releases, frozen operations or tardiness, so it runs only where the problem has none of them;
elsewhere the neighbourhood search runs instead. It restarts from the shared best schedule whenever the full
search finds a better one than its own, and yields the cores while it finds nothing, like the neighbourhood
search (``yielding.py``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from automation.scheduling.engine import tabu_kernel as kernel
from automation.scheduling.engine.incumbent import Incumbent, Schedule
from automation.scheduling.engine.problem import Assignment, FrozenOp, OpKey, Problem
from automation.scheduling.engine.yielding import SLICE_S, YieldingSearch

_CHUNK_S = 0.05  # the kernel holds no lock but cannot be interrupted: a stop waits at most this long
_FIRST_CHUNK = 2_000  # moves in the first chunk; later chunks are sized from the rate measured
_MAX_OPERATIONS = 2_000  # the tabu list is a square matrix over the operations: 32 MB at this size
_MAX_STALL = 5_000  # moves without a better schedule before going back to the best one
_KICK = 4  # random critical swaps applied to the best schedule on going back to it


def is_classic_job_shop(problem: Problem, *, frozen: Sequence[FrozenOp], now: int) -> bool:
    """Whether the problem is a classic job shop, the only kind the tabu search knows."""
    operations = [operation for _, operation in problem.operations()]
    return (
        not frozen
        and now == 0
        and 0 < len(operations) <= _MAX_OPERATIONS
        and all(len(op.options) == 1 and not op.materials for op in operations)
        and all(m.calendar is None and not m.downtime for m in problem.machines)
        and not problem.machines_with_setups()
        and all(o.release == 0 for o in problem.orders)
        and not (problem.hard_due_dates and any(o.due is not None for o in problem.orders))
    )


class Tabu(YieldingSearch):
    """Improves ``incumbent``'s makespan on a classic job shop (``is_classic_job_shop``)."""

    def __init__(self, problem: Problem, incumbent: Incumbent, *, seed: int = 0, slice_s: float = SLICE_S) -> None:
        super().__init__(incumbent, slice_s=slice_s)
        self._rng = random.Random(seed)
        self._keys: list[OpKey] = []
        self._machines: list[str] = []
        durations, job_prev = [], []
        for key, _ in problem.operations():
            ((machine, minutes),) = problem.durations(key).items()
            job_prev.append(len(self._keys) - 1 if key[1] > 0 else -1)
            self._keys.append(key)
            self._machines.append(machine)
            durations.append(minutes)
        self._index = {key: i for i, key in enumerate(self._keys)}
        n = len(self._keys)
        self._p = np.array(durations, np.int64)
        self._job_prev = np.array(job_prev, np.int64)
        self._job_next = np.full(n, -1, np.int64)
        for i, before in enumerate(job_prev):
            if before >= 0:
                self._job_next[before] = i
        self._mach_prev = np.full(n, -1, np.int64)
        self._mach_next = np.full(n, -1, np.int64)
        self._best_prev = np.full(n, -1, np.int64)
        self._best_next = np.full(n, -1, np.int64)
        self._best_heads = np.zeros(n, np.int64)
        self._tabu = np.zeros((n, n), np.int64)
        self._state = np.zeros(kernel.STATE_SIZE, np.int64)
        self._chunk = _FIRST_CHUNK
        self._tenure = (10, 16) if n < 400 else (12, 20)

    def _step(self, value: int, schedule: Schedule, *, time_limit: float) -> None:
        if self._state[kernel.PROVEN]:
            return
        if self._state[kernel.BEST] <= 0 or value < self._state[kernel.BEST]:
            self._load(schedule)  # the full search found a better schedule than this search's own: go on from it
        until = time.monotonic() + time_limit
        before = int(self._state[kernel.BEST]) if self._state[kernel.BEST] > 0 else value
        while not self._stopped and time.monotonic() < until and not self._state[kernel.PROVEN]:
            started = time.monotonic()
            kernel.search(
                self._p,
                self._job_prev,
                self._job_next,
                self._mach_prev,
                self._mach_next,
                self._best_prev,
                self._best_next,
                self._best_heads,
                self._tabu,
                self._state,
                self._chunk,
                self._rng.randrange(2**31),
                *self._tenure,
                _MAX_STALL,
                _KICK,
            )
            rate = self._chunk / max(1e-6, time.monotonic() - started)
            self._chunk = max(100, int(rate * _CHUNK_S))
        best = int(self._state[kernel.BEST])
        offered = best < before or (best <= value and self._state[kernel.PROVEN])
        if offered and self._incumbent.offer(best, self._schedule(), same_value_replaces=True):
            self.improvements += best < value
        if self._state[kernel.PROVEN]:
            self._incumbent.raise_bound(best)  # no critical swap left: a machine or a job alone makes this long

    def _load(self, schedule: Schedule) -> None:
        self._mach_prev[:] = -1
        self._mach_next[:] = -1
        on_machine: dict[str, list[Assignment]] = {}
        for a in schedule:
            on_machine.setdefault(a.machine, []).append(a)
        for assignments in on_machine.values():
            assignments.sort(key=lambda a: a.start)
            for first, second in pairwise(assignments):
                i, j = self._index[first.key], self._index[second.key]
                self._mach_next[i], self._mach_prev[j] = j, i
        self._tabu[:, :] = 0
        self._state[:] = 0
        self._state[kernel.BEST] = -1

    def _schedule(self) -> Schedule:
        rows = zip(self._keys, self._machines, self._best_heads, self._p, strict=True)
        return tuple(
            Assignment(order, index, machine, int(start), int(start + minutes))
            for (order, index), machine, start, minutes in rows
        )
