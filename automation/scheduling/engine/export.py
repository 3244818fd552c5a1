"""A schedule as CSV, one row per operation, ordered by machine then start."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from automation.scheduling.engine.problem import Assignment


def schedule_csv(schedule: Sequence[Assignment]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["machine", "order", "operation", "start", "end", "setup"])
    for a in sorted(schedule, key=lambda a: (a.machine, a.start)):
        writer.writerow([a.machine, a.order, a.op_index, a.start, a.end, a.setup])
    return buffer.getvalue()
