"""A learned vibration classifier on a tenant's labelled captures, on top of the physics. Pure Python, no Django.

Each capture's `Analysis.features` (rate-independent: time statistics, energy shares in fixed bands up to 5 kHz,
envelope evidence at each defect frequency) with its label (normal, outer_race, inner_race, rolling_element,
...) trains a random forest. It complements, never replaces, the physics: a newly registered machine has no
labels, and a label the tenant never saw cannot be predicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from automation.maintenance.engine.serialization import dump_artifact, load_artifact

__all__ = ["LearnedPrediction", "VibrationClassifier", "train_vibration_classifier"]

ARTIFACT_KIND = "vib-classifier"
MIN_PER_CLASS = 3


@dataclass(frozen=True)
class LearnedPrediction:
    label: str
    probability: float


class VibrationClassifier:
    def __init__(self, model: object, classes: tuple[str, ...], n_features: int):
        self.model = model
        self.classes = classes
        self.n_features = n_features

    def predict(self, features: Sequence[float]) -> LearnedPrediction:
        return self.predict_many([features])[0]

    def predict_many(self, rows: Sequence[Sequence[float]]) -> list[LearnedPrediction]:
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features")
        proba = np.asarray(self.model.predict_proba(x))  # type: ignore[attr-defined]
        out = []
        for row in proba:
            i = int(np.argmax(row))
            out.append(LearnedPrediction(self.classes[i], round(float(row[i]), 4)))
        return out

    def to_bytes(self) -> bytes:
        return dump_artifact(obj=self, kind=ARTIFACT_KIND)

    @classmethod
    def from_bytes(cls, data: bytes) -> VibrationClassifier:
        return load_artifact(data=data, kind=ARTIFACT_KIND, expected_type=cls)


def train_vibration_classifier(
    features: Sequence[Sequence[float]], labels: Sequence[str], *, seed: int = 0
) -> VibrationClassifier:
    """A random forest (100 trees, balanced class weights) on labelled captures. Needs at least two labels with
    at least MIN_PER_CLASS captures each."""
    from sklearn.ensemble import RandomForestClassifier

    x = np.asarray(features, dtype=np.float64)
    counts = {label: list(labels).count(label) for label in set(labels)}
    usable = sorted(label for label, n in counts.items() if n >= MIN_PER_CLASS)
    if len(usable) < 2:
        raise ValueError(f"need two labels with at least {MIN_PER_CLASS} captures each; have {counts}")
    keep = np.asarray([label in usable for label in labels])
    y = np.asarray(labels)[keep]
    model = RandomForestClassifier(
        n_estimators=100, class_weight="balanced", random_state=seed, n_jobs=1, min_samples_leaf=1
    )
    model.fit(x[keep], y)
    return VibrationClassifier(model, tuple(str(c) for c in model.classes_), x.shape[1])
