"""When machines can work, and how far ahead the solver has to look.

An operation, together with the changeover right before it, must lie inside a
single working window: it may not span a shift break, a weekend or a downtime.
That is the simple rule that is always physically right; a caller whose
operations may pause over a break splits them into shorter operations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from automation.scheduling.engine.problem import FrozenOp, Machine, Problem, Window


def working_windows(machine: Machine, *, horizon: int) -> tuple[Window, ...]:
    """Calendar minus downtime within ``[0, horizon)``, sorted and merged."""
    windows = _merge(machine.calendar if machine.calendar is not None else [(0, horizon)], horizon=horizon)
    for down_start, down_end in machine.downtime:
        windows = [
            piece
            for start, end in windows
            for piece in ((start, min(end, down_start)), (max(start, down_end), end))
            if piece[0] < piece[1]
        ]
    return tuple(windows)


def gaps(windows: Sequence[Window], *, horizon: int) -> tuple[Window, ...]:
    """The complement of merged ``windows`` within ``[0, horizon)``."""
    bounds = [0, *(t for window in windows for t in window), horizon]
    return tuple((start, end) for start, end in zip(bounds[::2], bounds[1::2], strict=True) if start < end)


def start_ranges(windows: Sequence[Window], *, duration: int) -> list[Window]:
    """Closed ranges of start times at which ``duration`` minutes fit in one window."""
    return [(start, end - duration) for start, end in windows if end - start >= duration]


def earliest_fit(windows: Sequence[Window], *, earliest: int, duration: int) -> int | None:
    for start, end in windows:
        begin = max(start, earliest)
        if begin + duration <= end:
            return begin
    return None


def inside_one(windows: Sequence[Window], start: int, end: int) -> bool:
    return any(w_start <= start and end <= w_end for w_start, w_end in windows)


def planning_horizon(problem: Problem, *, frozen: Iterable[FrozenOp] = (), now: int = 0) -> int:
    """``problem.horizon``, or a bound no optimal schedule needs to exceed.

    Past the last fixed point in time (releases, arrivals, calendar and downtime
    ends, frozen operations) every machine is either free for good or closed for
    good, so doing all remaining work one operation after another, each with the
    longest changeover, fits before this bound.
    """
    if problem.horizon is not None:
        return problem.horizon
    fixed_points = [
        now,
        *(order.release for order in problem.orders),
        *problem.material_arrivals.values(),
        *(end for m in problem.machines for _, end in (*(m.calendar or ()), *m.downtime)),
        *(op.start + problem.durations((op.order, op.op_index))[op.machine] for op in frozen),
    ]
    longest_setup = max((s.minutes for s in problem.setups), default=0)
    work = sum(max(problem.durations(key).values(), default=0) + longest_setup for key, _ in problem.operations())
    return max(fixed_points) + work


def _merge(windows: Iterable[Window], *, horizon: int) -> list[Window]:
    merged: list[Window] = []
    for start, end in sorted((max(s, 0), min(e, horizon)) for s, e in windows):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
