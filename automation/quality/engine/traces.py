"""Per-unit root cause from recorded traces: which variable's state is least explained by its causes.

A failed unit (a run, a workpiece, a machine cycle) carries step functions: each process variable holds a value
from one recorded change to the next. The healthy reference (units that passed) tells, for every variable, how
often each of its states occurs together with each state of its causes (its parents in the causal prior: the
routing order, refined where the tenant names which variable drives which). In the window before the failure
was detected, each candidate is scored by its mean conditional surprise, -log P(state | parents' states), over
time. A variable that moved on its own (a sensor that dropped out while its command held, a filter that clogged)
is surprising given its causes; a downstream variable that merely followed an upstream change is not, because
its parents' states explain it (or are themselves unseen, which spreads its probability evenly instead of
concentrating blame). This is the regression-based hypothesis-testing idea of root-cause analysis (a root cause
is a variable whose mechanism changed, not one whose inputs did) for discrete states.

Continuous variables are cut into states by quantiles of the reference, with one state below and one above
everything the reference saw. Ties are broken by the causal order: the upstream variable first.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "TraceCause",
    "TraceRanking",
    "UnitTrace",
    "rank_trace_causes",
]

_MAX_EXACT_STATES = 12
_QUANTILE_BINS = 10
_SMOOTHING = 0.5  # seconds of pseudo-observation per state (additive smoothing of time-weighted counts)


@dataclass(frozen=True, slots=True)
class UnitTrace:
    """One unit's recorded variables: for each, the change times (ascending, seconds) and the values from then on.
    `end` is when the unit's record ends (the failure time for a failed unit)."""

    changes: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]]
    end: float


@dataclass(frozen=True, slots=True)
class TraceCause:
    variable: str
    score: float  # mean conditional surprise in the window, nats
    state: float | None  # the variable's value that was most surprising (None: nothing was)
    surprise_peak: float
    since: float | None  # when that surprising state began (seconds, the unit's clock)
    parents: tuple[str, ...]
    reference: str = "primary"  # "primary" (the same machine), "fallback" (every healthy unit), "own_history"


@dataclass(frozen=True, slots=True)
class TraceRanking:
    causes: tuple[TraceCause, ...]
    window: tuple[float, float]
    verdict: str  # "ranked" or "cannot_tell"
    reason: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class _States:
    exact: bool
    edges: tuple[float, ...]
    values: tuple[float, ...]

    def of(self, value: float) -> int:
        if self.exact:
            for i, v in enumerate(self.values):
                if v == value:
                    return i
            return len(self.values)  # a value the reference never held
        return int(np.searchsorted(np.asarray(self.edges), value, side="right"))

    @property
    def count(self) -> int:
        return len(self.values) + 1 if self.exact else len(self.edges) + 1


def _states_for(values: Sequence[float]) -> _States:
    distinct = sorted(set(values))
    if len(distinct) <= _MAX_EXACT_STATES:
        return _States(True, (), tuple(distinct))
    arr = np.asarray(values, dtype=float)
    inner = np.quantile(arr, np.linspace(0.0, 1.0, _QUANTILE_BINS + 1)[1:-1])
    edges = [float(arr.min()), *sorted({float(x) for x in inner}), float(np.nextafter(arr.max(), math.inf))]
    return _States(False, tuple(edges), ())


def _value_at(changes: tuple[tuple[float, ...], tuple[float, ...]], t: float) -> float | None:
    times, values = changes
    i = int(np.searchsorted(np.asarray(times), t, side="right")) - 1
    return None if i < 0 else values[i]


def _segments(
    trace: UnitTrace, names: Sequence[str], start: float, end: float
) -> list[tuple[float, float, tuple[float | None, ...]]]:
    """(from, to, values of `names`) for every stretch in [start, end) where none of them changes."""
    cuts = {start, end}
    for name in names:
        changes = trace.changes.get(name)
        if changes:
            cuts.update(t for t in changes[0] if start < t < end)
    ordered = sorted(cuts)
    out = []
    for a, b in itertools.pairwise(ordered):
        if b > a:
            values = tuple(_value_at(trace.changes[n], a) if n in trace.changes else None for n in names)
            out.append((a, b, values))
    return out


def rank_trace_causes(
    *,
    reference: Sequence[UnitTrace],
    failed: UnitTrace,
    candidates: Sequence[str],
    parents: Mapping[str, Sequence[str]],
    order: Sequence[str] = (),
    window_s: float = 30.0,
    defect_causes: Sequence[str] = (),
    fallback: Sequence[UnitTrace] = (),
    min_reference_s: float = 60.0,
    min_support_s: float = 1.0,
) -> TraceRanking:
    """Rank `candidates` for one failed unit. `order` is the causal (routing) order used to break ties, upstream
    first; `parents` the causal prior; `defect_causes` what the defect directly depends on (only their ancestors
    are candidates). Each variable is judged against `reference` (say, healthy units of the same machine) where
    that recorded it for `min_reference_s`, else against `fallback` (say, every healthy unit). Says "cannot_tell"
    when the reference is too thin or nothing is surprising."""
    start, end = max(0.0, failed.end - window_s), failed.end
    position = {name: i for i, name in enumerate(order)}
    reference_seconds = sum(t.end for t in (*reference, *fallback))
    if reference_seconds < min_reference_s:
        return TraceRanking((), (start, end), "cannot_tell", "too little healthy reference to compare with")
    if defect_causes:
        # Only what lies upstream of the defect can have caused it (the routing order, or the causal graph).
        upstream = _ancestors(defect_causes, parents)
        candidates = [c for c in candidates if c in upstream]
    causes = []
    for name in candidates:
        # Condition on the causes the failed unit recorded; the others are marginalised out (not "unknown").
        pa = tuple(p for p in parents.get(name, ()) if p != name and p in failed.changes)
        pool, used = reference, "primary"
        if fallback and _recorded(reference, name) < min_reference_s:
            pool, used = fallback, "fallback"
        if _recorded(pool, name) < min_reference_s and start >= min_reference_s:
            # No healthy unit recorded it: the failed unit's own history before the window is the reference.
            pool, used = (UnitTrace(failed.changes, start),), "own_history"
        observed = [v for t in pool if name in t.changes for v in t.changes[name][1]]
        if not observed and name not in failed.changes:
            continue
        states = _states_for(observed or [0.0])
        parent_states = {
            p: _states_for([v for t in pool if p in t.changes for v in t.changes[p][1]] or [0.0]) for p in pa
        }
        # For every parents' configuration: seconds spent in it, and the lengths of the stretches each state of
        # this variable held within it. A state is unusual given its causes when the healthy line seldom held it
        # there, or never for as long as the failed unit did.
        config_seconds: dict[tuple[int, ...], float] = {}
        stretches: dict[tuple[tuple[int, ...], int], list[float]] = {}
        names = (name, *pa)
        for trace in pool:
            for key, state, length in _stretches(trace, names, 0.0, trace.end, states, parent_states, pa):
                config_seconds[key] = config_seconds.get(key, 0.0) + length
                stretches.setdefault((key, state), []).append(length)
        total_surprise, peak, peak_state, since, covered = 0.0, 0.0, math.nan, None, 0.0
        for key, state, length, begun, value in _stretches(
            failed, names, 0.0, end, states, parent_states, pa, with_value=True
        ):
            if begun + length <= start:
                continue
            # Of the healthy time in which, under these causes, the variable had already held one state for as
            # long as the failed unit held this one: the share spent in this state.
            held_any = sum(max(0.0, s - length) for x in range(states.count) for s in stretches.get((key, x), ()))
            seconds = config_seconds.get(key, 0.0)
            if seconds < min_support_s:
                # The causes are in a configuration the healthy line never showed: the anomaly is theirs, and
                # this variable's state is no evidence against it.
                surprise = 0.0
            elif held_any < min_support_s:
                # Nothing ever held a state this long under these causes (a value that changes all the time):
                # how often the healthy line was in this state at all.
                occupied = sum(stretches.get((key, state), ()))
                surprise = -math.log((occupied + _SMOOTHING) / (seconds + _SMOOTHING * states.count))
            else:
                held = sum(max(0.0, s - length) for s in stretches.get((key, state), ()))
                surprise = -math.log((held + _SMOOTHING) / (held_any + _SMOOTHING * states.count))
            total_surprise += surprise * length
            covered += length
            if surprise > peak:
                peak, peak_state, since = surprise, value, begun
        if covered <= 0:
            continue
        causes.append(
            TraceCause(
                name,
                peak,
                peak_state if math.isfinite(peak_state) else None,
                total_surprise / (end - start),
                since,
                pa,
                used,
            )
        )
    causes.sort(key=lambda c: (-round(c.score, 9), position.get(c.variable, len(position)), c.variable))
    if not causes or causes[0].score <= 0.0:
        return TraceRanking(tuple(causes), (start, end), "cannot_tell", "no candidate left its healthy behaviour")
    return TraceRanking(tuple(causes), (start, end), "ranked")


def _recorded(traces: Sequence[UnitTrace], name: str) -> float:
    return sum(t.end - t.changes[name][0][0] for t in traces if name in t.changes and t.changes[name][0])


def _ancestors(roots: Sequence[str], parents: Mapping[str, Sequence[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(parents.get(node, ()))
    return seen


def _stretches(
    trace: UnitTrace,
    names: Sequence[str],
    start: float,
    end: float,
    states: _States,
    parent_states: Mapping[str, _States],
    pa: Sequence[str],
    *,
    with_value: bool = False,
) -> list[Any]:
    """Maximal stretches in [start, end) where the variable's state and its parents' configuration both hold:
    (configuration, state, length[, began, value])."""
    out: list[Any] = []
    current: list[Any] | None = None
    for a, b, values in _segments(trace, names, start, end):
        if values[0] is None:
            current = None
            continue
        key = tuple(-1 if v is None else parent_states[p].of(v) for p, v in zip(pa, values[1:], strict=True))
        state = states.of(values[0])
        if current is not None and current[0] == key and current[1] == state and current[3] + current[2] == a:
            current[2] += b - a
        else:
            current = [key, state, b - a, a, values[0]]
            out.append(current)
    return [tuple(c) if with_value else tuple(c[:3]) for c in out]
