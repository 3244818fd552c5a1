"""A Gantt chart of a schedule as PNG bytes: one row per machine, one colour per order.

Unavailable time (off-shift, downtime) is shaded grey and changeovers are
hatched. Uses matplotlib's object API with the Agg canvas, never pyplot, so
it keeps no global state and is safe in web workers and threads.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from automation.scheduling.engine.availability import gaps, working_windows
from automation.scheduling.engine.kpis import makespan
from automation.scheduling.engine.problem import Assignment, Problem


def gantt_png(problem: Problem, schedule: Sequence[Assignment], *, title: str = "") -> bytes:
    end = max(makespan(schedule), 1)
    rows = {m.id: row for row, m in enumerate(problem.machines)}
    colours = {order.id: f"C{i % 10}" for i, order in enumerate(problem.orders)}
    figure = Figure(figsize=(min(4 + end / 20, 16), 1 + 0.45 * len(rows)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for machine in problem.machines:
        closed = gaps(working_windows(machine, horizon=end), horizon=end)
        axes.broken_barh([(s, e - s) for s, e in closed], (rows[machine.id] - 0.4, 0.8), color="0.85")
    for a in schedule:
        y = rows[a.machine] - 0.4
        colour = colours.get(a.order, "0.5")
        axes.broken_barh([(a.start, a.end - a.start)], (y, 0.8), facecolor=colour, edgecolor="black", linewidth=0.5)
        if a.setup:
            axes.broken_barh([(a.start - a.setup, a.setup)], (y, 0.8), facecolor="white", edgecolor=colour, hatch="//")
        axes.text(
            (a.start + a.end) / 2,
            rows[a.machine],
            f"{a.order}/{a.op_index}",
            ha="center",
            va="center",
            fontsize=6,
            clip_on=True,
        )
    axes.set_yticks(list(rows.values()), list(rows))
    axes.invert_yaxis()
    axes.set_xlim(0, end)
    axes.set_xlabel("minutes from horizon start")
    axes.set_title(title)
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, format="png")
    return png.getvalue()
