"""Statistical process control: control limits, the Western Electric / Nelson run rules, capability.

Individuals and moving range (I-MR) for one value per unit; X-bar and R for subgroups of 2 to 10 (the usual
Shewhart constants). Limits are estimated from a baseline (the first `baseline` points, or all of them) and the
rules are then applied to every point. Capability uses the within-subgroup sigma (Cp, Cpk) against spec limits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Capability",
    "ControlChart",
    "RuleViolation",
    "capability",
    "imr_chart",
    "run_rules",
    "xbar_r_chart",
]

# Shewhart constants by subgroup size n: d2 (R/sigma), A2, D3, D4.
_D2 = {2: 1.128, 3: 1.693, 4: 2.059, 5: 2.326, 6: 2.534, 7: 2.704, 8: 2.847, 9: 2.970, 10: 3.078}
_A2 = {2: 1.880, 3: 1.023, 4: 0.729, 5: 0.577, 6: 0.483, 7: 0.419, 8: 0.373, 9: 0.337, 10: 0.308}
_D3 = {2: 0.0, 3: 0.0, 4: 0.0, 5: 0.0, 6: 0.0, 7: 0.076, 8: 0.136, 9: 0.184, 10: 0.223}
_D4 = {2: 3.267, 3: 2.574, 4: 2.282, 5: 2.114, 6: 2.004, 7: 1.924, 8: 1.864, 9: 1.816, 10: 1.777}


@dataclass(frozen=True, slots=True)
class RuleViolation:
    rule: int  # Nelson rule number 1..8 (1-4 are the Western Electric rules)
    index: int  # the point that completed the pattern
    description: str


@dataclass(frozen=True, slots=True)
class ControlChart:
    kind: str  # "imr" or "xbar_r"
    center: float
    sigma: float
    lcl: float
    ucl: float
    points: tuple[float, ...]
    range_center: float
    range_lcl: float
    range_ucl: float
    ranges: tuple[float, ...]
    violations: tuple[RuleViolation, ...]


@dataclass(frozen=True, slots=True)
class Capability:
    cp: float | None
    cpk: float | None
    mean: float
    sigma: float
    n: int


def imr_chart(
    values: Sequence[float], *, baseline: int | None = None, rules: Sequence[int] = (1, 2, 3, 4)
) -> ControlChart:
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        raise ValueError("an individuals chart needs at least two values")
    base = x[: baseline or x.size]
    if base.size < 2:
        raise ValueError("the baseline needs at least two values")
    mr = np.abs(np.diff(x))
    mr_bar = float(np.mean(np.abs(np.diff(base))))
    sigma = mr_bar / _D2[2]
    center = float(np.mean(base))
    return ControlChart(
        "imr",
        center,
        sigma,
        center - 3 * sigma,
        center + 3 * sigma,
        tuple(float(v) for v in x),
        mr_bar,
        0.0,
        _D4[2] * mr_bar,
        tuple(float(v) for v in mr),
        tuple(run_rules(x, center=center, sigma=sigma, rules=rules)),
    )


def xbar_r_chart(
    subgroups: Sequence[Sequence[float]], *, baseline: int | None = None, rules: Sequence[int] = (1, 2, 3, 4)
) -> ControlChart:
    sizes = {len(g) for g in subgroups}
    if len(sizes) != 1 or not 2 <= next(iter(sizes)) <= 10:
        raise ValueError("X-bar/R needs subgroups of one size between 2 and 10")
    n = next(iter(sizes))
    data = np.asarray(subgroups, dtype=float)
    means = data.mean(axis=1)
    ranges = data.max(axis=1) - data.min(axis=1)
    k = baseline or len(subgroups)
    center = float(means[:k].mean())
    r_bar = float(ranges[:k].mean())
    sigma_mean = _A2[n] * r_bar / 3.0
    return ControlChart(
        "xbar_r",
        center,
        sigma_mean,
        center - _A2[n] * r_bar,
        center + _A2[n] * r_bar,
        tuple(float(v) for v in means),
        r_bar,
        _D3[n] * r_bar,
        _D4[n] * r_bar,
        tuple(float(v) for v in ranges),
        tuple(run_rules(means, center=center, sigma=sigma_mean, rules=rules)),
    )


def run_rules(
    values: Sequence[float] | np.ndarray, *, center: float, sigma: float, rules: Sequence[int] = (1, 2, 3, 4)
) -> list[RuleViolation]:
    """The Nelson rules (1-4 are Western Electric's): each violation once, at the point that completes it."""
    x = np.asarray(values, dtype=float)
    out: list[RuleViolation] = []
    if sigma <= 0 or not math.isfinite(sigma):
        return out
    z = (x - center) / sigma
    wanted = set(rules)

    def window(i: int, size: int) -> np.ndarray:
        return z[max(0, i - size + 1) : i + 1]

    for i in range(z.size):
        if 1 in wanted and abs(z[i]) > 3:
            out.append(RuleViolation(1, i, "one point beyond 3 sigma"))
        if 2 in wanted and i >= 8:
            w = window(i, 9)
            if (w > 0).all() or (w < 0).all():
                out.append(RuleViolation(2, i, "nine points in a row on one side of the centre line"))
        if 3 in wanted and i >= 5:
            d = np.diff(window(i, 6))
            if (d > 0).all() or (d < 0).all():
                out.append(RuleViolation(3, i, "six points in a row steadily rising or falling"))
        if 4 in wanted and i >= 13:
            d = np.diff(window(i, 14))
            if (d[1:] * d[:-1] < 0).all():
                out.append(RuleViolation(4, i, "fourteen points in a row alternating up and down"))
        if 5 in wanted and i >= 2:
            w = window(i, 3)
            if (w > 2).sum() >= 2 or (w < -2).sum() >= 2:
                out.append(RuleViolation(5, i, "two of three points beyond 2 sigma on one side"))
        if 6 in wanted and i >= 4:
            w = window(i, 5)
            if (w > 1).sum() >= 4 or (w < -1).sum() >= 4:
                out.append(RuleViolation(6, i, "four of five points beyond 1 sigma on one side"))
        if 7 in wanted and i >= 14 and (np.abs(window(i, 15)) < 1).all():
            out.append(RuleViolation(7, i, "fifteen points in a row within 1 sigma"))
        if 8 in wanted and i >= 7:
            w = window(i, 8)
            if (np.abs(w) > 1).all() and (w > 0).any() and (w < 0).any():
                out.append(RuleViolation(8, i, "eight points in a row beyond 1 sigma on both sides"))
    return _first_of_runs(out)


def _first_of_runs(violations: list[RuleViolation]) -> list[RuleViolation]:
    """A run that continues (ten points on one side) is one violation, reported where it was first complete."""
    kept: list[RuleViolation] = []
    last: dict[int, int] = {}
    for v in violations:
        if v.rule != 1 and last.get(v.rule) == v.index - 1:
            last[v.rule] = v.index
            continue
        last[v.rule] = v.index
        kept.append(v)
    return kept


def capability(
    values: Sequence[float], *, lsl: float | None, usl: float | None, sigma: float | None = None
) -> Capability:
    """Cp and Cpk against the spec limits; sigma defaults to the moving-range estimate (short-term)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        raise ValueError("capability needs at least two values")
    mean = float(x.mean())
    s = sigma if sigma is not None else float(np.mean(np.abs(np.diff(x)))) / _D2[2]
    if s <= 0:
        return Capability(None, None, mean, s, int(x.size))
    cp = (usl - lsl) / (6 * s) if lsl is not None and usl is not None else None
    sides = [
        v
        for v in (
            (usl - mean) / (3 * s) if usl is not None else None,
            (mean - lsl) / (3 * s) if lsl is not None else None,
        )
        if v is not None
    ]
    return Capability(cp, min(sides) if sides else None, mean, s, int(x.size))
