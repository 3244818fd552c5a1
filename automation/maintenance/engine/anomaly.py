"""Anomaly detection against a healthy baseline, per channel and across channels.

Per channel: robust z-score, (value - healthy median) / healthy MAD-scale.
Median and MAD ignore the few outliers a "healthy" window always contains,
so one bad sample in the baseline does not blind the detector.

Across channels: Mahalanobis distance of the robust z-vector from the healthy
mean, using a shrunk (Ledoit-Wolf) covariance so that a handful of channels
with few baseline rows still give a well-conditioned inverse. This catches
correlation breaks: e.g. motor current rising without the load-driven rise in
vibration and temperature that normally accompanies it, where each channel
alone stays inside its usual range.

Both scores are put on one scale: the multivariate distance is converted to
the normal z with the same tail probability (chi-square with one degree of
freedom per channel), so one ``threshold`` means the same false-alarm rate
for both.

Persistence: a row is flagged when its score exceeds the threshold; flagged
rows separated by at most ``max_gap`` unflagged rows are merged into one run,
and a run becomes an anomaly only if it has at least ``min_duration`` flagged
rows. A single noisy sample never raises an alarm.

The baseline is fitted on healthy data: the asset's own early life (per
asset) or several assets' healthy windows (per asset type). Assets that run
in distinct operating regimes should be passed through
``FeatureBuilder.normalise`` first so the regimes do not look anomalous.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from automation.maintenance.engine.serialization import dump_artifact, load_artifact

MULTIVARIATE = "multivariate"
_ARTIFACT_KIND = "healthy-baseline"
# 1.4826 * MAD estimates the standard deviation of normal data.
_MAD_TO_STD = 1.4826


@dataclass(frozen=True)
class Anomaly:
    channel: str  # channel name, or "multivariate" for a cross-channel anomaly
    start: Hashable  # index label of the first flagged row
    end: Hashable  # index label of the last flagged row
    score: float  # peak z-equivalent score over the run
    ongoing: bool  # the run reaches the last row of the scored frame

    @property
    def is_multivariate(self) -> bool:
        return self.channel == MULTIVARIATE


@dataclass(frozen=True)
class HealthyBaseline:
    channels: tuple[str, ...]
    median: np.ndarray
    scale: np.ndarray
    mean_z: np.ndarray
    precision: np.ndarray  # inverse shrunk covariance of the robust z-vectors
    n_rows: int

    def robust_z(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.channels if c not in frame.columns]
        if missing:
            raise ValueError(f"frame lacks channels {missing}")
        values = frame.loc[:, list(self.channels)].to_numpy(dtype=np.float64)
        return pd.DataFrame((values - self.median) / self.scale, index=frame.index, columns=list(self.channels))

    def multivariate_z(self, frame: pd.DataFrame) -> pd.Series:
        """Per-row cross-channel score as a normal z-equivalent (NaN if a channel is missing)."""
        from scipy.special import ndtri_exp
        from scipy.stats import chi2

        centred = self.robust_z(frame).to_numpy() - self.mean_z
        squared = np.einsum("ij,jk,ik->i", centred, self.precision, centred)
        # Tail probability of chi2(p), then the z with the same upper tail;
        # computed in log space so extreme rows give large finite scores.
        log_tail = chi2.logsf(squared, df=len(self.channels))
        with np.errstate(invalid="ignore"):
            score = -ndtri_exp(log_tail)
        return pd.Series(np.where(np.isnan(squared), np.nan, score), index=frame.index)

    def to_bytes(self) -> bytes:
        return dump_artifact(obj=self, kind=_ARTIFACT_KIND)

    @classmethod
    def from_bytes(cls, data: bytes) -> HealthyBaseline:
        return load_artifact(data=data, kind=_ARTIFACT_KIND, expected_type=cls)


def fit_healthy_baseline(*, frames: Sequence[pd.DataFrame], channels: Sequence[str] | None = None) -> HealthyBaseline:
    """Fit on healthy rows (one asset's early life, or many assets' healthy windows)."""
    from sklearn.covariance import LedoitWolf

    if not frames:
        raise ValueError("need at least one healthy frame")
    if channels is None:
        channels = [c for c in frames[0].columns if pd.api.types.is_numeric_dtype(frames[0][c])]
    chosen = tuple(str(c) for c in channels)
    values = np.vstack([frame.loc[:, list(chosen)].to_numpy(dtype=np.float64) for frame in frames])
    if len(values) < 10:
        raise ValueError("need at least 10 healthy rows to fit a baseline")
    median = np.nanmedian(values, axis=0)
    scale = _MAD_TO_STD * np.nanmedian(np.abs(values - median), axis=0)
    # Channels whose MAD is 0 (mostly constant, e.g. quantised) fall back to
    # the standard deviation, and truly constant ones to a tiny scale so any
    # change at all is flagged.
    fallback = np.nanstd(values, axis=0)
    scale = np.where(scale > 0, scale, np.where(fallback > 0, fallback, 1e-9))
    z = (values - median) / scale
    complete = z[~np.isnan(z).any(axis=1)]
    if len(complete) < 10:
        raise ValueError("need at least 10 healthy rows without missing values")
    covariance = LedoitWolf().fit(complete)
    return HealthyBaseline(
        channels=chosen,
        median=median,
        scale=scale,
        mean_z=covariance.location_,
        precision=np.linalg.pinv(covariance.covariance_),
        n_rows=len(values),
    )


def _runs(*, flagged: np.ndarray, min_duration: int, max_gap: int) -> list[tuple[int, int]]:
    """(first, last) row positions of persistent flagged runs."""
    positions = np.flatnonzero(flagged)
    runs: list[tuple[int, int]] = []
    if len(positions) == 0:
        return runs
    start = previous = positions[0]
    count = 1
    for position in positions[1:]:
        if position - previous - 1 <= max_gap:
            count += 1
        else:
            if count >= min_duration:
                runs.append((start, previous))
            start, count = position, 1
        previous = position
    if count >= min_duration:
        runs.append((start, previous))
    return runs


def _anomalies_from_score(
    *, channel: str, score: np.ndarray, index: pd.Index, threshold: float, min_duration: int, max_gap: int
) -> list[tuple[int, Anomaly]]:
    flagged = np.nan_to_num(score, nan=0.0) > threshold
    found = []
    for first, last in _runs(flagged=flagged, min_duration=min_duration, max_gap=max_gap):
        found.append(
            (
                first,
                Anomaly(
                    channel=channel,
                    start=index[first],
                    end=index[last],
                    score=float(np.nanmax(score[first : last + 1])),
                    ongoing=last >= len(index) - 1 - max_gap,
                ),
            )
        )
    return found


def detect_anomalies(
    *,
    frame: pd.DataFrame,
    baseline: HealthyBaseline,
    threshold: float = 4.0,
    min_duration: int = 3,
    max_gap: int = 1,
    multivariate: bool = True,
) -> list[Anomaly]:
    """Per-channel and cross-channel anomalies in ``frame``, sorted by start.

    ``threshold`` is in robust z units (4 means a normal tail of about 3e-5
    per row); ``min_duration`` flagged rows are required per anomaly.
    """
    if min_duration < 1 or max_gap < 0:
        raise ValueError("min_duration must be >= 1 and max_gap >= 0")
    if len(frame) == 0:
        return []
    found: list[tuple[int, Anomaly]] = []
    z = baseline.robust_z(frame)
    for channel in baseline.channels:
        found += _anomalies_from_score(
            channel=channel,
            score=np.abs(z[channel].to_numpy()),
            index=frame.index,
            threshold=threshold,
            min_duration=min_duration,
            max_gap=max_gap,
        )
    if multivariate and len(baseline.channels) > 1:
        found += _anomalies_from_score(
            channel=MULTIVARIATE,
            score=baseline.multivariate_z(frame).to_numpy(),
            index=frame.index,
            threshold=threshold,
            min_duration=min_duration,
            max_gap=max_gap,
        )
    return [anomaly for _, anomaly in sorted(found, key=lambda item: (item[0], item[1].channel))]
