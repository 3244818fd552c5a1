"""The best schedule found so far, shared by the searches that run side by side in one solve."""

from __future__ import annotations

import threading
from collections.abc import Callable

from automation.scheduling.engine.problem import Assignment

Schedule = tuple[Assignment, ...]
Report = Callable[[int, int, Schedule], None]


class Incumbent:
    """Thread-safe best schedule and best bound; ``report`` sees every strictly better schedule, in order.

    ``seed`` sets a starting schedule (the dispatching rule's) without reporting it: the searches start from it,
    and it is reported once a search returns it or something better, so a report always comes from a search.
    A search may swap the best schedule for an equally good one without a report, so the best schedule at the
    end has the last reported value but need not be the last reported schedule.
    """

    def __init__(self, report: Report | None = None) -> None:
        self._report = report
        self._changed = threading.Condition()
        self.value: int | None = None
        self.schedule: Schedule = ()
        self.bound: int | None = None
        self.reported = False

    def seed(self, value: int, schedule: Schedule) -> None:
        with self._changed:
            self.value, self.schedule = value, schedule
            self._changed.notify_all()

    def best(self, timeout: float) -> tuple[int, Schedule] | None:
        """The best value and schedule, waiting up to ``timeout`` seconds for a first one."""
        with self._changed:
            self._changed.wait_for(lambda: self.value is not None, timeout=timeout)
            return None if self.value is None else (self.value, self.schedule)

    def wait_below(self, value: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a schedule better than ``value``; whether there is one."""
        with self._changed:
            return self._changed.wait_for(lambda: self.value is not None and self.value < value, timeout=timeout)

    def offer(
        self, value: int, schedule: Schedule | Callable[[], Schedule], *, same_value_replaces: bool = False
    ) -> bool:
        """Keep ``schedule`` if it is better; ``same_value_replaces``: also if it is as good, so that a search
        can drift across equally good schedules. ``schedule`` may be a function, only called when it is kept."""
        with self._changed:
            better = self.value is None or value < self.value or (value == self.value and not self.reported)
            if not better and not (same_value_replaces and value == self.value):
                return False
            self.value, self.schedule = value, schedule() if callable(schedule) else schedule
            self._changed.notify_all()
            if better:
                self.reported = True
                if self._report is not None:
                    self._report(value, self.bound if self.bound is not None else 0, self.schedule)
            return True

    def raise_bound(self, bound: int) -> None:
        with self._changed:
            if self.bound is None or bound > self.bound:
                self.bound = bound

    @property
    def proven(self) -> bool:
        """No schedule better than the best one exists."""
        with self._changed:
            return self.reported and self.value is not None and self.bound is not None and self.bound >= self.value
