"""Billing periods are calendar months in UTC, so any process can name an event's period without the database."""

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """Names the period in Redis keys: 202501."""
        return f"{self.start:%Y%m}"

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def period_containing(moment: datetime) -> Period:
    moment = moment.astimezone(UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)
    return Period(start, end)
