"""Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009): score(d) = sum over rankings of
weight / (k + rank(d)), rank 1-based. It needs no score calibration between a cosine distance and a text rank."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FusedHit:
    key: str
    score: float
    ranks: Mapping[str, int]  # retriever name -> 1-based rank, for the retrievers that found it


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[str]], *, k: int = 60, weights: Mapping[str, float] | None = None
) -> list[FusedHit]:
    """Fuse best-first rankings of keys; ties broken by the best single rank, then by key, so results are stable."""
    if k < 1:
        raise ValueError("k must be at least 1.")
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    for name, ranking in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        seen: set[str] = set()
        for position, key in enumerate(ranking, start=1):
            if key in seen:
                continue
            seen.add(key)
            scores[key] = scores.get(key, 0.0) + weight / (k + position)
            ranks.setdefault(key, {})[name] = position
    ordered = sorted(scores, key=lambda key: (-scores[key], min(ranks[key].values()), key))
    return [FusedHit(key=key, score=scores[key], ranks=dict(ranks[key])) for key in ordered]
