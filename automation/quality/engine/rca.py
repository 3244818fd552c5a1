"""Which station, machine, process variable or material lot made the defect: a ranked list with its evidence.

Each unit brings whether it shows the defect, the machine it passed at each station, the material lots that went
into it and the value each process variable recorded for it. Every candidate is tested against the defect:

* machine: the defect rate of units through it against units through the other machines of its station
  (Fisher's exact test); only stations with parallel machines can blame a machine;
* material lot: units with the lot against units without it (Fisher's exact test);
* process variable: values of defective units against good ones (Mann-Whitney U) after removing what the
  variables of earlier stations explain (least squares on the good units: the routing order as causal prior).
  A downstream value that moved only because an upstream one did keeps no effect of its own, so it cannot
  outrank its cause; the raw shift is still reported;
* station: its strongest machine or variable, Bonferroni-corrected for how many it holds.

The p-values of all candidates are adjusted together (Holm), so a line with many variables does not find causes
by chance. Evidence per candidate: defect rate with and without it, effect size (risk ratio, or the rank-biserial
correlation for values), the change point (CUSUM on the candidate's series in time order), and the defective
units it covers. Too few defects, or no candidate significant, gives no cause; two candidates that cover the same
units at different levels but are not upstream of one another give "cannot tell".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

__all__ = [
    "Candidate",
    "LineModel",
    "RcaConfig",
    "RcaResult",
    "UnitRecord",
    "holm",
    "rank_line_causes",
]


@dataclass(frozen=True, slots=True)
class UnitRecord:
    unit: str
    time: float  # when the unit finished (seconds, any epoch): orders the units for change points
    defective: bool
    machines: Mapping[str, str] = field(default_factory=dict)  # station -> machine
    lots: tuple[str, ...] = ()
    values: Mapping[str, float] = field(default_factory=dict)  # variable -> value (missing: not recorded)


@dataclass(frozen=True, slots=True)
class LineModel:
    stations: tuple[str, ...]  # routing order, upstream first
    variable_station: Mapping[str, str]  # variable -> station
    parents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # explicit causal prior per variable


@dataclass(frozen=True, slots=True)
class RcaConfig:
    alpha: float = 0.05
    min_defects: int = 5
    min_units: int = 20
    same_units_jaccard: float = 0.95


@dataclass(frozen=True, slots=True)
class Candidate:
    level: str  # "station", "machine", "variable", "lot"
    name: str  # station code, "station/machine", variable name, lot code
    station: str | None
    p_value: float
    p_adjusted: float
    significant: bool
    effect: float  # risk ratio (machine, lot) or rank-biserial correlation (variable, signed)
    effect_kind: str
    rate_with: float
    rate_without: float
    units_with: int
    affected_units: tuple[str, ...]  # defective units it covers
    change_point: float | None  # time of the change (the units' clock)
    raw_effect: float | None = None  # a variable's effect before removing upstream influence
    explained_by: tuple[str, ...] = ()
    direction: str = ""  # "high", "low" for variables


@dataclass(frozen=True, slots=True)
class RcaResult:
    verdict: str  # "cause_found", "cannot_tell", "no_cause", "too_few_defects"
    message: str
    candidates: tuple[Candidate, ...]
    units: int
    defects: int
    tested: int


@dataclass(slots=True)
class _Raw:
    level: str
    name: str
    station: str | None
    p: float
    effect: float
    effect_kind: str
    rate_with: float
    rate_without: float
    units_with: int
    affected: tuple[str, ...]
    change: float | None
    raw_effect: float | None = None
    explained_by: tuple[str, ...] = ()
    direction: str = ""


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _change_point(times: np.ndarray, series: np.ndarray) -> float | None:
    """The time after which the mean of `series` (in time order) changed most (maximum of the CUSUM)."""
    if series.size < 4 or float(np.std(series)) == 0.0:
        return None
    order = np.argsort(times, kind="stable")
    s = series[order].astype(float)
    cusum = np.cumsum(s - s.mean())
    k = int(np.argmax(np.abs(cusum[:-1])))
    return float(times[order][k + 1])


def _least_squares(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Ordinary least squares through the normal equations on centred data (a few columns, many rows: far
    cheaper than an SVD), with a whisper of ridge so collinear upstream variables cannot make it singular."""
    z_mean, y_mean = z.mean(axis=0), float(y.mean())
    zc = z - z_mean
    gram = zc.T @ zc
    gram[np.diag_indices_from(gram)] += 1e-9 * (float(np.trace(gram)) / max(1, gram.shape[0]) + 1.0)
    coef = np.linalg.solve(gram, zc.T @ (y - y_mean))
    return coef, y_mean - float(z_mean @ coef)


def _fisher(a: int, b: int, c: int, d: int) -> float:
    """One-sided: is the defect rate higher with the candidate (a defective of a+b) than without (c of c+d)?"""
    return float(stats.fisher_exact([[a, b], [c, d]], alternative="greater")[1])


def rank_line_causes(*, units: Sequence[UnitRecord], line: LineModel, config: RcaConfig = RcaConfig()) -> RcaResult:
    n = len(units)
    defective = np.array([u.defective for u in units], dtype=bool)
    defects = int(defective.sum())
    times = np.array([u.time for u in units], dtype=float)
    names = np.array([u.unit for u in units], dtype=object)
    if defects < config.min_defects or n < config.min_units:
        return RcaResult(
            "too_few_defects",
            f"{defects} defective of {n} units: at least {config.min_defects} defects among {config.min_units} "
            "units are needed to tell a cause from chance.",
            (),
            n,
            defects,
            0,
        )
    if defects == n:
        return RcaResult("cannot_tell", "Every unit is defective: nothing to compare with.", (), n, defects, 0)
    position = {s: i for i, s in enumerate(line.stations)}
    raw: list[_Raw] = []

    def binary(level: str, name: str, station: str | None, mask: np.ndarray, among: np.ndarray) -> None:
        with_ = mask & among
        without = ~mask & among
        a, b = int((with_ & defective).sum()), int((with_ & ~defective).sum())
        c, d = int((without & defective).sum()), int((without & ~defective).sum())
        if a + b == 0 or c + d == 0:
            return
        rate_with, rate_without = a / (a + b), c / (c + d)
        ratio = rate_with / rate_without if rate_without > 0 else (math.inf if rate_with > 0 else 1.0)
        raw.append(
            _Raw(
                level=level,
                name=name,
                station=station,
                p=_fisher(a, b, c, d),
                effect=ratio,
                effect_kind="risk_ratio",
                rate_with=rate_with,
                rate_without=rate_without,
                units_with=a + b,
                affected=tuple(sorted(str(x) for x in names[with_ & defective])),
                change=_change_point(times[with_], defective[with_].astype(float)),
            )
        )

    everyone = np.ones(n, dtype=bool)
    for station in line.stations:
        at_station = np.array([u.machines.get(station, "") for u in units], dtype=object)
        used = at_station != ""
        machines = sorted(set(at_station[used]))
        if len(machines) < 2:
            continue
        for machine in machines:
            binary("machine", f"{station}/{machine}", station, at_station == machine, used)
    lot_units: dict[str, list[int]] = {}
    for i, u in enumerate(units):
        for lot in u.lots:
            lot_units.setdefault(lot, []).append(i)
    for lot in sorted(lot_units):
        mask = np.zeros(n, dtype=bool)
        mask[lot_units[lot]] = True
        binary("lot", lot, None, mask, everyone)

    variables = sorted(line.variable_station, key=lambda v: (position.get(line.variable_station[v], 0), v))
    matrix = np.full((n, len(variables)), np.nan)
    for j, v in enumerate(variables):
        matrix[:, j] = [u.values.get(v, np.nan) for u in units]
    for j, v in enumerate(variables):
        x = matrix[:, j]
        ok = np.isfinite(x)
        if ok.sum() < config.min_units or (ok & defective).sum() < 2 or (ok & ~defective).sum() < 2:
            continue
        upstream = list(line.parents.get(v, ())) or [
            w
            for w in variables
            if position.get(line.variable_station[w], 0) < position.get(line.variable_station[v], 0)
        ]
        cols = [variables.index(w) for w in upstream if w in variables]
        residual, explained = x.copy(), tuple(upstream)
        if cols:
            z = matrix[:, cols]
            fit = ok & np.isfinite(z).all(axis=1) & ~defective
            if fit.sum() > len(cols) + 5:
                coef, intercept = _least_squares(z[fit], x[fit])
                full = np.isfinite(z).all(axis=1) & ok
                residual = np.full(n, np.nan)
                residual[full] = x[full] - (z[full] @ coef + intercept)
                ok = full
            else:
                explained = ()
        else:
            explained = ()
        bad, good = residual[ok & defective], residual[ok & ~defective]
        if bad.size < 2 or good.size < 2 or float(np.ptp(residual[ok])) == 0.0:
            continue
        u_stat, p = stats.mannwhitneyu(bad, good, alternative="two-sided")
        rank_biserial = 2.0 * float(u_stat) / (bad.size * good.size) - 1.0
        raw_bad, raw_good = x[np.isfinite(x) & defective], x[np.isfinite(x) & ~defective]
        raw_u = stats.mannwhitneyu(raw_bad, raw_good)[0]
        raw_rb = 2.0 * float(raw_u) / (raw_bad.size * raw_good.size) - 1.0
        high = rank_biserial >= 0
        threshold = float(np.median(good))
        side = (residual > threshold) if high else (residual < threshold)
        side &= ok
        with_n, without_n = int(side.sum()), int((ok & ~side).sum())
        rate_with = float((side & defective).sum()) / with_n if with_n else 0.0
        rate_without = float((ok & ~side & defective).sum()) / without_n if without_n else 0.0
        raw.append(
            _Raw(
                level="variable",
                name=v,
                station=line.variable_station[v],
                p=float(p),
                effect=rank_biserial,
                effect_kind="rank_biserial",
                rate_with=rate_with,
                rate_without=rate_without,
                units_with=with_n,
                affected=tuple(sorted(str(x) for x in names[side & defective])),
                change=_change_point(times[ok], residual[ok]),
                raw_effect=raw_rb,
                explained_by=explained,
                direction="high" if high else "low",
            )
        )
    # Stations: the strongest member, Bonferroni over the members.
    for station in line.stations:
        members = [r for r in raw if r.station == station]
        if members:
            best = min(members, key=lambda r: r.p)
            raw.append(replace(best, level="station", name=station, p=min(1.0, best.p * len(members))))

    adjusted = holm([r.p for r in raw])
    candidates = [
        Candidate(
            level=r.level,
            name=r.name,
            station=r.station,
            p_value=r.p,
            p_adjusted=adj,
            significant=adj < config.alpha,
            effect=r.effect,
            effect_kind=r.effect_kind,
            rate_with=r.rate_with,
            rate_without=r.rate_without,
            units_with=r.units_with,
            affected_units=r.affected,
            change_point=r.change,
            raw_effect=r.raw_effect,
            explained_by=r.explained_by,
            direction=r.direction,
        )
        for r, adj in zip(raw, adjusted, strict=True)
    ]
    level_rank = {"machine": 0, "lot": 0, "variable": 1, "station": 2}

    def upstream_key(c: Candidate) -> int:
        return position.get(c.station, -1) if c.station is not None else -1

    candidates.sort(
        key=lambda c: (
            not c.significant,
            round(math.log10(max(c.p_adjusted, 1e-300)), 1) if c.significant else c.p_value,
            upstream_key(c),
            level_rank[c.level],
            -abs(c.effect) if math.isfinite(c.effect) else -1e300,
            c.name,
        )
    )
    significant = [c for c in candidates if c.significant]
    tested = len(candidates)
    if not significant:
        return RcaResult(
            "no_cause",
            f"No station, machine, variable or lot is tied to the defect beyond chance ({tested} candidates tested, "
            f"Holm-adjusted at {config.alpha}).",
            tuple(candidates),
            n,
            defects,
            tested,
        )
    top = significant[0]
    rivals = [
        c
        for c in significant[1:]
        if c.level not in ("station",)
        and not _related(top, c)
        and _jaccard(top.affected_units, c.affected_units) >= config.same_units_jaccard
        and abs(math.log10(max(c.p_adjusted, 1e-300)) - math.log10(max(top.p_adjusted, 1e-300))) < 1.0
    ]
    if rivals:
        names_ = ", ".join([top.name, *(c.name for c in rivals)])
        return RcaResult(
            "cannot_tell",
            f"{names_} cover the same defective units equally well; these data cannot tell them apart "
            "(vary them independently, or inspect them directly).",
            tuple(candidates),
            n,
            defects,
            tested,
        )
    return RcaResult(
        "cause_found", f"Most likely cause: {top.level} {top.name}.", tuple(candidates), n, defects, tested
    )


def _related(a: Candidate, b: Candidate) -> bool:
    """A machine and a variable of the same station, or a station and its members: one finding, not two."""
    if a.level == "station" or b.level == "station":
        return a.station == b.station
    return a.station is not None and a.station == b.station


def _jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0
