"""Real time to the engine's integer minutes and back.

Minute 0 is the horizon start, truncated to a whole minute. Rounding is always towards feasibility: a moment
something becomes possible (a release, a delivery, a shift start, the end of a downtime) rounds up, a moment
something stops being possible (a shift end, the start of a downtime) rounds down, so a schedule in whole
minutes never uses a second the factory did not offer.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from django.core.exceptions import ValidationError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTE = timedelta(minutes=1)


def validate_timezone(value: str) -> None:
    if value not in _zones():
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/Berlin.")


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def truncate_to_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Horizon:
    """Minutes ``0 .. minutes`` from ``start``."""

    start: datetime
    minutes: int

    @classmethod
    def beginning(cls, start: datetime, *, days: int) -> "Horizon":
        return cls(truncate_to_minute(start), days * 24 * 60)

    @property
    def end(self) -> datetime:
        return self.moment(self.minutes)

    def minute_up(self, moment: datetime) -> int:
        return math.ceil((moment - self.start) / MINUTE)

    def minute_down(self, moment: datetime) -> int:
        return math.floor((moment - self.start) / MINUTE)

    def moment(self, minute: int) -> datetime:
        return self.start + minute * MINUTE

    def window(self, start: datetime, end: datetime, *, available: bool) -> tuple[int, int] | None:
        """``[start, end)`` clipped to the horizon: shrunk to whole minutes if it is working time, grown if not."""
        if available:
            first, last = self.minute_up(start), self.minute_down(end)
        else:
            first, last = self.minute_down(start), self.minute_up(end)
        first, last = max(first, 0), min(last, self.minutes)
        return (first, last) if first < last else None


def shift_windows(
    shifts: Iterable[tuple[Iterable[str], time, time]], *, zone: str, horizon: Horizon
) -> list[tuple[int, int]]:
    """Working windows of weekly shifts ``(days, start, end)`` in the time zone ``zone``, within the horizon.

    A shift whose end is at or before its start runs past midnight into the next day. The engine merges
    windows that touch, so back-to-back shifts make one long window.
    """
    tz = ZoneInfo(zone)
    weekly = [({WEEKDAYS.index(d) for d in days}, start, end) for days, start, end in shifts]
    first_day = horizon.start.astimezone(tz).date() - timedelta(days=1)  # a night shift may reach into the horizon
    last_day = horizon.end.astimezone(tz).date()
    windows = []
    day = first_day
    while day <= last_day:
        for weekdays, start, end in weekly:
            if day.weekday() not in weekdays:
                continue
            begins = datetime.combine(day, start, tzinfo=tz)
            ends = datetime.combine(day + timedelta(days=1) if end <= start else day, end, tzinfo=tz)
            if (window := horizon.window(begins.astimezone(UTC), ends.astimezone(UTC), available=True)) is not None:
                windows.append(window)
        day += timedelta(days=1)
    return sorted(windows)
