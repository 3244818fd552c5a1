"""Supervised root-cause ranking from labelled history: the tenant's confirmed causes of earlier analyses teach
which evidence matters on their line.

Each case is one ranking the unsupervised methods produced (one failed unit of a `unit` analysis, or a whole
`line` analysis): its candidates with their evidence as numbers. A labelled case also says which of its
candidates were confirmed. A logistic regression (scikit-learn, class-balanced, L2) is trained on every
candidate of every labelled case (confirmed: 1, not: 0) and scores the candidates of a new case; they are ranked
by that probability.

Features, all computed the same way for training and new cases:

* the unsupervised evidence: the score and its log, the score relative to the case's best, the reciprocal of
  the unsupervised rank, and what the method adds (surprise peak, how long before the failure the state began,
  which reference it was compared with; for `line` cases the adjusted p-value, effect size, the defect rates
  with and without, the share of defective units covered, the level);
* the causal prior: how many parents and children the candidate has in the causal graph, whether it is a root,
  and how many hops it lies upstream of what the defect depends on;
* the history itself: how often this candidate was a confirmed cause in the other labelled cases where it was a
  candidate (Laplace-smoothed). For a training case the case itself is left out of that rate, so the model
  cannot learn to copy its own label.

Fewer than `min_cases` labelled cases, or no confirmed cause among them, gives no model (`None`): the caller
keeps the unsupervised ranking and says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CandidateEvidence",
    "LabelledCase",
    "SupervisedRanking",
    "causal_prior",
    "line_case",
    "rank_supervised",
    "unit_case",
]

LEVELS = ("station", "machine", "variable", "lot")


@dataclass(frozen=True, slots=True)
class CandidateEvidence:
    name: str
    features: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class LabelledCase:
    candidates: tuple[CandidateEvidence, ...]
    causes: frozenset[str]


@dataclass(frozen=True, slots=True)
class SupervisedRanking:
    names: tuple[str, ...]  # best first
    probabilities: tuple[float, ...]
    trained_on: int  # labelled cases
    features: tuple[str, ...]


def causal_prior(
    *, names: Sequence[str], parents: Mapping[str, Sequence[str]], defect_causes: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per name: in- and out-degree in the causal graph, root or not, and hops upstream of the defect's direct
    causes (0: one of them; a large value: not upstream at all)."""
    children: dict[str, int] = {}
    for found in parents.values():
        for parent in found:
            children[parent] = children.get(parent, 0) + 1
    # Breadth-first upstream from the defect's direct causes.
    hops: dict[str, int] = {name: 0 for name in defect_causes}
    frontier = list(defect_causes)
    while frontier:
        following = []
        for node in frontier:
            for parent in parents.get(node, ()):
                if parent not in hops:
                    hops[parent] = hops[node] + 1
                    following.append(parent)
        frontier = following
    out = {}
    for name in names:
        n_parents = len(parents.get(name, ()))
        out[name] = {
            "prior_parents": float(n_parents),
            "prior_children": float(children.get(name, 0)),
            "prior_root": 1.0 if n_parents == 0 else 0.0,
            "prior_hops": float(hops.get(name, 10)),
            "prior_upstream": 1.0 if name in hops else 0.0,
        }
    return out


def _score_features(scores: Sequence[float]) -> list[dict[str, float]]:
    best = max((s for s in scores if math.isfinite(s)), default=0.0) or 1.0
    return [
        {
            "score": s,
            "log_score": math.log1p(max(s, 0.0)),
            "relative_score": s / best,
            "reciprocal_rank": 1.0 / (rank + 1),
        }
        for rank, s in enumerate(scores)
    ]


def unit_case(
    causes: Sequence[Mapping[str, object]], *, prior: Mapping[str, Mapping[str, float]], window_s: float
) -> tuple[CandidateEvidence, ...]:
    """The candidates of one failed unit's trace ranking (as the `unit` analysis stores them)."""
    scores = [_number(c.get("score")) for c in causes]
    out = []
    for c, base in zip(causes, _score_features(scores), strict=True):
        name = str(c["name"])
        before = _number(c.get("before_failure_s"), default=window_s)
        features = {
            **base,
            "peak": _number(c.get("mean_surprise")),
            "held_share": min(max(before / window_s, 0.0), 10.0) if window_s > 0 else 0.0,
            "no_state": 1.0 if c.get("state") is None else 0.0,
            "recorded_parents": float(len(c.get("parents") or ())),  # type: ignore[arg-type]
            "fallback_reference": 1.0 if c.get("reference", "primary") != "primary" else 0.0,
            **prior.get(name, {}),
        }
        out.append(CandidateEvidence(name, features))
    return tuple(out)


def line_case(
    causes: Sequence[Mapping[str, object]], *, prior: Mapping[str, Mapping[str, float]], defects: int
) -> tuple[CandidateEvidence, ...]:
    """The candidates of one `line` analysis (stations, machines, variables, lots)."""
    scores = [-math.log10(max(_number(c.get("p_adjusted"), default=1.0), 1e-300)) for c in causes]
    out = []
    for c, base in zip(causes, _score_features(scores), strict=True):
        name = str(c["name"])
        level = str(c.get("level", ""))
        features = {
            **base,
            "effect": abs(_number(c.get("effect"))),
            "rate_with": _number(c.get("rate_with")),
            "rate_gap": _number(c.get("rate_with")) - _number(c.get("rate_without")),
            "coverage": _number(c.get("affected_count")) / max(defects, 1),
            "significant": 1.0 if c.get("significant") else 0.0,
            "explained": 1.0 if c.get("explained_by") else 0.0,
            **{f"level_{lv}": 1.0 if level == lv else 0.0 for lv in LEVELS},
            **prior.get(name, {}),
        }
        out.append(CandidateEvidence(name, features))
    return tuple(out)


def _number(value: object, *, default: float = 0.0) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return default


def _history_rates(history: Sequence[LabelledCase]) -> tuple[dict[str, int], dict[str, int]]:
    seen: dict[str, int] = {}
    confirmed: dict[str, int] = {}
    for case in history:
        for c in case.candidates:
            seen[c.name] = seen.get(c.name, 0) + 1
            if c.name in case.causes:
                confirmed[c.name] = confirmed.get(c.name, 0) + 1
    return seen, confirmed


def _rows(
    candidates: Sequence[CandidateEvidence],
    *,
    seen: Mapping[str, int],
    confirmed: Mapping[str, int],
    leave_out: frozenset[str] | None,
) -> list[dict[str, float]]:
    rows = []
    for c in candidates:
        n, k = seen.get(c.name, 0), confirmed.get(c.name, 0)
        if leave_out is not None:  # a training case: its own label does not count
            n -= 1
            k -= 1 if c.name in leave_out else 0
        rows.append({**c.features, "history_rate": (k + 0.5) / (n + 1.0), "history_seen": math.log1p(n)})
    return rows


def rank_supervised(
    *,
    history: Sequence[LabelledCase],
    case: Sequence[CandidateEvidence],
    min_cases: int = 5,
    regularisation: float = 1.0,
) -> SupervisedRanking | None:
    """The candidates of `case` ranked by a logistic regression trained on the labelled `history`."""
    usable = [h for h in history if h.candidates and h.causes & {c.name for c in h.candidates}]
    if len(usable) < min_cases or not case:
        return None
    from sklearn.linear_model import LogisticRegression  # import here: the engine's other users do not need it

    seen, confirmed = _history_rates(usable)
    train: list[dict[str, float]] = []
    labels: list[int] = []
    for h in usable:
        train.extend(_rows(h.candidates, seen=seen, confirmed=confirmed, leave_out=h.causes))
        labels.extend(1 if c.name in h.causes else 0 for c in h.candidates)
    if len(set(labels)) < 2:
        return None
    names = sorted({key for row in train for key in row})
    x = np.array([[row.get(key, 0.0) for key in names] for row in train])
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std < 1e-9] = 1.0  # a constant column (up to rounding) carries nothing; it must not blow up
    model = LogisticRegression(C=regularisation, class_weight="balanced", max_iter=1000)
    model.fit((x - mean) / std, np.array(labels))
    rows = _rows(case, seen=seen, confirmed=confirmed, leave_out=None)
    z = (np.array([[row.get(key, 0.0) for key in names] for row in rows]) - mean) / std
    probabilities = model.predict_proba(z)[:, 1]
    # Ties (and near ties) keep the unsupervised order: the case's candidates come ranked.
    order = sorted(range(len(case)), key=lambda i: (-round(float(probabilities[i]), 9), i))
    return SupervisedRanking(
        names=tuple(case[i].name for i in order),
        probabilities=tuple(float(probabilities[i]) for i in order),
        trained_on=len(usable),
        features=tuple(names),
    )
