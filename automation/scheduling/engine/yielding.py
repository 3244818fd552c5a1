"""A search that runs beside CP-SAT's full search in a thread of its own, improving the best schedule in slices.

It yields the cores while it finds nothing. On few cores its time is the full search's, and where that search
alone reaches the optimum (la24) slices that keep failing around the same schedule only delay it. So each
fruitless slice in a row shrinks the thread's share of time, by a pause after the slice, down to a floor; any
better schedule, from either search, makes the share whole again. The floor is not lower because on some
instances (la29) the neighbourhood search finds every improvement after the first second, some of them after
ten seconds of fruitless slices.
"""

from __future__ import annotations

import time

from automation.scheduling.engine.incumbent import Incumbent, Schedule

SLICE_S = 0.5  # per slice: short enough for many tries a minute, long enough to settle a neighbourhood
_YIELD = 0.8  # the thread's share of time after each fruitless slice in a row is this times the one before
_MIN_SHARE = 0.25  # 0.1 measured worse on la29 (1177, 1185 against 1171, 1173)
_POLL_S = 0.1  # how often a pause checks for a stop


class YieldingSearch:
    """Improves ``incumbent`` until ``deadline`` or ``stop()``; subclasses say what one slice does."""

    def __init__(self, incumbent: Incumbent, *, slice_s: float = SLICE_S) -> None:
        self._incumbent = incumbent
        self._slice_s = slice_s
        self._stopped = False
        self.slices = 0
        self.improvements = 0
        self.busy_s = 0.0  # time spent in slices, not in pauses

    def stop(self) -> None:
        self._stopped = True

    def run(self, deadline: float) -> None:
        share = 1.0
        while not self._stopped and (left := deadline - time.monotonic()) > 0.05:
            best = self._incumbent.best(timeout=min(left, _POLL_S))
            if best is None:
                continue  # nothing to improve yet: the full search has not found a first schedule
            if not best[1]:
                return  # no operations at all
            started = time.monotonic()
            self._step(best[0], best[1], time_limit=min(left, self._slice_s))
            self.slices += 1
            spent = time.monotonic() - started
            self.busy_s += spent
            if self._incumbent.wait_below(best[0], timeout=0):
                share = 1.0
            else:
                share = max(_MIN_SHARE, share * _YIELD)
                self._pause(best[0], spent * (1 / share - 1), deadline)

    def _step(self, value: int, schedule: Schedule, *, time_limit: float) -> None:
        """Look for a schedule better than ``value`` near ``schedule`` and offer it to the incumbent."""
        raise NotImplementedError

    def _pause(self, value: int, seconds: float, deadline: float) -> None:
        """Sleep ``seconds``, but no longer than until a stop, the deadline or a schedule better than ``value``."""
        until = min(deadline, time.monotonic() + seconds)
        while not self._stopped and (left := until - time.monotonic()) > 0:
            if self._incumbent.wait_below(value, timeout=min(left, _POLL_S)):
                return
