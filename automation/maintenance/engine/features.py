"""Per-asset multichannel time series -> model features.

Input: one DataFrame per asset, rows evenly spaced in time (one row per cycle;
the Django layer resamples raw telemetry before calling us), one column per
channel, optionally some operating-setting columns.

Every feature at row t uses rows <= t only (causal), so training rows look
exactly like what we see when scoring an asset mid-life, and scoring a
truncated history never peeks ahead.

Pipeline, fitted on training assets only (fitting on the assets being scored
would leak their future into the normalisation):

1. operating conditions: when setting columns are given, cluster their
   values into regimes if they are discrete (C-MAPSS FD002/FD004 flight
   conditions), and within each regime regress each channel on the settings
   if they are continuous (measured load or speed). Sensor levels follow the
   operating condition far more than wear, so removing that variation first
   is what makes wear visible; it also stops channels that merely follow the
   load from looking like drivers.
2. constant channels (and quasi-constant ones, a single value >= 99 % of the
   time) are dropped: they carry no wear signal, only quantisation noise.
3. each remaining channel is z-scored with its per-regime mean (plus the
   setting compensation) and residual std.
4. per channel: last value, rolling mean / std / least-squares slope over a
   few windows, optional exponentially smoothed levels, and the drift of the
   smoothed level from the asset's own early-life baseline (removes per-asset
   manufacturing offsets that otherwise look like wear).
5. optional health indicator (``fit_health_indicator``, needs run-to-failure
   targets): a ridge-regression combination of the normalised channels fitted
   to the capped RUL. Wear moves many channels a little each; trees split on
   one feature at a time and cannot average noisy channels, a linear
   combination can. Its trajectory (smoothed levels, slopes over long
   windows = degradation rate, drift, recent minimum) is what tells how fast
   an asset is wearing, and is the largest single accuracy gain on C-MAPSS.
6. the asset's age (rows since the start of its history).

Internally features are computed for a batch of "variants" of one history at
once (array shaped rows x variants x channels); variant 0 is the history as
observed, the others are copies with one channel replaced by its healthy
value, which is how ``rul.py`` explains predictions without a Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

AGE_FEATURE = "age"
HEALTH_INDICATOR = "health_indicator"


@dataclass(frozen=True)
class FeatureConfig:
    windows: tuple[int, ...] = (10, 30)
    ewm_spans: tuple[int, ...] = ()
    # Rows at the start of each history treated as that asset's healthy
    # reference; features before then compare against what exists so far.
    baseline_rows: int = 15
    include_age: bool = True
    quasi_constant_share: float = 0.99
    max_regimes: int = 8
    # A k-means split of the settings counts as real regimes only if it
    # explains almost all setting variance (C-MAPSS regimes explain > 99.9 %);
    # noise-like settings (FD001) stay a single regime, and so do continuous
    # ones (8 clusters explain ~98 % of a smooth 1-D distribution).
    regime_variance_explained: float = 0.995
    # Continuous settings (load, speed, ambient temperature) are compensated
    # linearly within each regime, but only for channels where they explain
    # at least this share of the variance; otherwise the fit is noise.
    min_setting_explained: float = 0.05
    # Health-indicator trajectory features (used once an indicator is fitted).
    # Long slope windows measure the degradation rate, which is what separates
    # an asset with 60 cycles left from one with 120 at the same wear level.
    hi_ewm_spans: tuple[int, ...] = (5, 10, 20)
    hi_windows: tuple[int, ...] = (10, 30, 60)
    hi_slope_windows: tuple[int, ...] = (20, 40, 80, 120, 160)
    hi_min_window: int = 100
    hi_ridge_alpha: float = 1.0

    def __post_init__(self) -> None:
        if not self.windows or min(self.windows) < 2:
            raise ValueError("windows must be non-empty and each at least 2 rows")
        if min(self.hi_slope_windows, default=3) < 3 or min(self.hi_windows, default=1) < 1:
            raise ValueError("health-indicator windows are too short")
        if self.baseline_rows < 1 or self.hi_min_window < 1:
            raise ValueError("baseline_rows and hi_min_window must be at least 1")

    @property
    def history_rows(self) -> int:
        """Rows of recent history the rolling features look at."""
        return max(self.windows + self.hi_windows + self.hi_slope_windows + (self.hi_min_window,))

    @property
    def tail_rows(self) -> int:
        """Rows needed to reproduce the last row's features."""
        # Exponential smoothing has unbounded memory; 7.5 spans leave < 1e-6
        # of the weight out.
        longest_ewm = max(self.ewm_spans + self.hi_ewm_spans, default=1)
        return max(self.history_rows, int(np.ceil(longest_ewm * 7.5))) + 10


@dataclass(frozen=True)
class HealthIndicator:
    """Linear combination of normalised channels fitted to the capped RUL."""

    weights: np.ndarray  # one per channel
    intercept: float

    def apply(self, normalised: np.ndarray) -> np.ndarray:
        # A missing channel counts as its training mean (z = 0).
        indicator: npt.NDArray[np.float64] = np.nan_to_num(normalised, nan=0.0) @ self.weights + self.intercept
        return indicator


@dataclass(frozen=True)
class RegimeModel:
    setting_columns: tuple[str, ...]
    centers: np.ndarray  # (n_regimes, n_settings) in standardised units
    setting_mean: np.ndarray
    setting_scale: np.ndarray

    @property
    def n_regimes(self) -> int:
        return len(self.centers)

    def assign(self, settings: np.ndarray) -> np.ndarray:
        if self.n_regimes == 1:
            return np.zeros(len(settings), dtype=np.int64)
        scaled = (settings - self.setting_mean) / self.setting_scale
        distances = ((scaled[:, None, :] - self.centers[None, :, :]) ** 2).sum(axis=2)
        nearest: npt.NDArray[np.intp] = distances.argmin(axis=1)
        return nearest


def _fit_regimes(*, settings: np.ndarray, columns: tuple[str, ...], config: FeatureConfig) -> RegimeModel:
    if not columns or len(settings) < 2:
        return RegimeModel(columns, np.zeros((1, len(columns))), np.zeros(len(columns)), np.ones(len(columns)))
    from sklearn.cluster import KMeans

    mean = settings.mean(axis=0)
    scale = settings.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    scaled = (settings - mean) / scale
    total = float(((scaled - scaled.mean(axis=0)) ** 2).sum())
    single = RegimeModel(columns, np.zeros((1, len(columns))), mean, scale)
    if total <= 0:
        return single
    # Fit on a deterministic subsample: regimes are few and well separated,
    # so more rows add time, not accuracy (this runs for k = 2..max_regimes).
    sample = scaled[:: max(1, len(scaled) // 2000)]
    sample_total = float(((sample - sample.mean(axis=0)) ** 2).sum())
    distinct = len(np.unique(sample, axis=0))
    largest = min(config.max_regimes, distinct)
    if largest < 2:
        return single

    def explains_regimes(kmeans: Any) -> bool:  # a fitted sklearn KMeans (sklearn is not followed)
        return bool(1 - kmeans.inertia_ / sample_total >= config.regime_variance_explained)

    # More clusters never explain less, so if the largest allowed k fails,
    # every smaller k fails too: one fit settles the common no-regime case.
    if not explains_regimes(KMeans(n_clusters=largest, n_init=2, random_state=0).fit(sample)):
        return single
    for k in range(2, largest + 1):
        kmeans = KMeans(n_clusters=k, n_init=2, random_state=0).fit(sample)
        if explains_regimes(kmeans):
            # Sort centres so regime ids do not depend on k-means internals.
            order = np.lexsort(kmeans.cluster_centers_.T[::-1])
            return RegimeModel(columns, kmeans.cluster_centers_[order], mean, scale)
    return single


# Trailing-window statistics over the rows of a 2-D array (rows, series),
# vectorised across series with cumulative sums: pandas' rolling applies
# column by column, which dominated training time with hundreds of series.
# Missing values are skipped; a window statistic needs a minimum number of
# valid rows (1 for a mean, 2 for a std, 3 for a slope), else it is NaN.


def _trailing_sum(values: np.ndarray, window: int) -> np.ndarray:
    total = np.cumsum(values, axis=0)
    if len(values) > window:
        total[window:] = total[window:] - total[:-window]
    return total


class _Windows:
    """Trailing-window sums of one (rows, series) array, reused across statistics."""

    def __init__(self, values: np.ndarray) -> None:
        self.valid = ~np.isnan(values)
        self.x = np.where(self.valid, values, 0.0)
        # Time is the row position; shifting it to the middle keeps the
        # sums of t*t small, which keeps the slope's subtraction exact.
        self.t = np.where(self.valid, np.arange(len(values), dtype=np.float64)[:, None] - len(values) / 2, 0.0)

    def _sums(self, window: int, *arrays: np.ndarray) -> list[np.ndarray]:
        return [_trailing_sum(a, window) for a in arrays]

    def mean(self, window: int) -> np.ndarray:
        n, sx = self._sums(window, self.valid.astype(np.float64), self.x)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n >= 1, sx / n, np.nan)

    def std(self, window: int) -> np.ndarray:
        n, sx, sxx = self._sums(window, self.valid.astype(np.float64), self.x, self.x * self.x)
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = (sxx - sx * sx / n) / (n - 1)
        return np.where(n >= 2, np.sqrt(np.maximum(variance, 0.0)), np.nan)

    def slope(self, window: int) -> np.ndarray:
        """Least-squares slope per row (units per row)."""
        n, st, stt, sx, stx = self._sums(
            window, self.valid.astype(np.float64), self.t, self.t * self.t, self.x, self.t * self.x
        )
        denominator = n * stt - st * st
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = (n * stx - st * sx) / denominator
        return np.where((n >= 3) & (denominator > 0), slope, np.nan)


def _ewm_mean(values: np.ndarray, span: int) -> np.ndarray:
    """Exponentially weighted mean (pandas ``adjust=True``), missing rows weigh 0."""
    from scipy.signal import lfilter

    decay = 1.0 - 2.0 / (span + 1.0)
    valid = ~np.isnan(values)
    numerator = lfilter([1.0], [1.0, -decay], np.where(valid, values, 0.0), axis=0)
    denominator = lfilter([1.0], [1.0, -decay], valid.astype(np.float64), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _trailing_min(values: np.ndarray, window: int) -> np.ndarray:
    padded = np.concatenate([np.full((window - 1, *values.shape[1:]), np.inf), values], axis=0)
    view = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)
    with np.errstate(invalid="ignore"):
        lowest = np.fmin.reduce(view, axis=-1)
    return np.where(np.isinf(lowest), np.nan, lowest)


def _expanding_mean(values: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(values)
    count = np.cumsum(valid, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.cumsum(np.where(valid, values, 0.0), axis=0) / count, np.nan)


@dataclass(frozen=True)
class FeatureBuilder:
    """Fitted feature pipeline; build with ``fit_feature_builder``."""

    config: FeatureConfig
    channels: tuple[str, ...]
    dropped_channels: tuple[str, ...]
    regimes: RegimeModel
    channel_mean: np.ndarray  # (n_regimes, n_channels)
    channel_std: np.ndarray  # residual std after the setting compensation
    # (n_regimes, n_settings, n_channels) on standardised settings; zero
    # where settings explain too little of a channel.
    setting_coefficients: np.ndarray | None = None
    health_indicator: HealthIndicator | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        return _feature_layout(self)[0]

    @property
    def feature_channels(self) -> tuple[str | None, ...]:
        """Channel each feature belongs to; None for age and the health indicator."""
        return _feature_layout(self)[1]

    def normalise(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-regime z-scores of the kept channels (settings are consumed here)."""
        missing = [c for c in self.channels + self.regimes.setting_columns if c not in frame.columns]
        if missing:
            raise ValueError(f"frame lacks columns {missing}")
        values = frame.loc[:, list(self.channels)].to_numpy(dtype=np.float64)
        regime, scaled_settings = _regimes_and_settings(frame=frame, regimes=self.regimes)
        expected = self.channel_mean[regime]
        if self.setting_coefficients is not None:
            expected = expected + np.einsum("is,isc->ic", scaled_settings, self.setting_coefficients[regime])
        normalised = (values - expected) / self.channel_std[regime]
        return pd.DataFrame(normalised, index=frame.index, columns=list(self.channels))

    def transform(self, frame: pd.DataFrame, *, last_only: bool = False) -> pd.DataFrame:
        """Features for every row of ``frame`` (or only its last row).

        ``last_only`` computes from the tail the rolling windows need plus the
        early-life baseline, so scoring an asset with a long history is cheap
        and gives the same values as the full computation (exponential
        smoothing differs by < 1e-6 of its weight).
        """
        normalised = self._checked_normalise(frame)
        matrix = self._variant_features(normalised[:, None, :], last_only=last_only)[:, 0, :]
        index = frame.index[-1:] if last_only else frame.index
        return pd.DataFrame(matrix, index=index, columns=list(self.feature_names))

    def transform_healed(self, frame: pd.DataFrame, *, last_only: bool = True) -> np.ndarray:
        """Features of ``frame`` and of one copy per channel where that channel
        is "healed": the drift of its slow-moving level away from the asset's
        own early-life level is removed, its short-term fluctuation kept.

        Why this counterfactual: a flat line would have a rolling std of
        exactly 0, which no training row has, and the trees would answer
        something arbitrary; a fleet-wide healthy level would move assets
        with a manufacturing offset and read as wear. Removing only the drift
        from the asset's own start removes wear and keeps everything else.
        Slow swings of an unmeasured operating load are removed too, so a
        load-following channel can show an effect either way; pass measured
        load or speed as a setting column and it is compensated beforehand.

        Returns an array (rows, 1 + n_channels, n_features), rows = 1 with
        ``last_only``; variant 0 is the observed history, variant 1 + c the
        history with channel c healed.
        """
        normalised = self._checked_normalise(frame)
        window = max(self.config.windows)
        level = _Windows(normalised).mean(window)
        early = _expanding_mean(normalised[: self.config.baseline_rows])
        reference = early[np.minimum(np.arange(len(normalised)), len(early) - 1)]
        healed = normalised - (level - reference)
        n_channels = len(self.channels)
        variants = np.repeat(normalised[:, None, :], 1 + n_channels, axis=1)
        for c in range(n_channels):
            variants[:, 1 + c, c] = healed[:, c]
        return self._variant_features(variants, last_only=last_only)

    def _checked_normalise(self, frame: pd.DataFrame) -> np.ndarray:
        if len(frame) == 0:
            raise ValueError("cannot build features from an empty history")
        normalised: npt.NDArray[np.float64] = self.normalise(frame).to_numpy()
        return normalised

    def _variant_features(self, normalised: np.ndarray, *, last_only: bool) -> np.ndarray:
        """(rows, variants, channels) normalised values -> (rows, variants, features)."""
        config = self.config
        head = normalised[: config.baseline_rows]
        age_offset = 0
        if last_only and len(normalised) > config.tail_rows:
            age_offset = len(normalised) - config.tail_rows
            normalised = normalised[age_offset:]
        n_rows, n_variants, n_channels = normalised.shape
        positions = np.arange(n_rows) + age_offset

        def rolling_blocks(
            values: np.ndarray,
            head_values: np.ndarray,
            *,
            windows: tuple[int, ...],
            ewm_spans: tuple[int, ...],
            slope_windows: tuple[int, ...] | None,
            drift_window: int,
            min_window: int,
            last_value: bool,
        ) -> list[np.ndarray]:
            # values: (rows, k) -> list of (rows, k) feature blocks, in the
            # order that _feature_layout names them.
            table = _Windows(values)
            blocks: list[np.ndarray] = [values] if last_value else []
            for window in windows:
                blocks.append(table.mean(window))
                if slope_windows is None:  # per-channel: std and slope with every window
                    blocks.append(table.std(window))
                    blocks.append(table.slope(window))
            for span in ewm_spans:
                blocks.append(_ewm_mean(values, span))
            for window in slope_windows or ():
                blocks.append(table.slope(window))
            # Drift of the smoothed level from the early-life reference: the
            # mean of the first baseline rows, or of those seen so far.
            smoothed = table.mean(drift_window)
            reference = _expanding_mean(head_values)
            blocks.append(smoothed - reference[np.minimum(positions, len(reference) - 1)])
            if min_window:
                blocks.append(_trailing_min(smoothed, min_window))
            return blocks

        channel_blocks = rolling_blocks(
            normalised.reshape(n_rows, -1),
            head.reshape(len(head), -1),
            windows=config.windows,
            ewm_spans=config.ewm_spans,
            slope_windows=None,
            drift_window=max(config.windows),
            min_window=0,
            last_value=True,
        )
        # (blocks, rows, variants, channels) -> (rows, variants, channels, blocks)
        stacked = np.stack(channel_blocks).reshape(len(channel_blocks), n_rows, n_variants, n_channels)
        parts = [stacked.transpose(1, 2, 3, 0).reshape(n_rows, n_variants, -1)]
        if self.health_indicator is not None:
            hi_blocks = rolling_blocks(
                self.health_indicator.apply(normalised),
                self.health_indicator.apply(head),
                windows=config.hi_windows,
                ewm_spans=config.hi_ewm_spans,
                slope_windows=config.hi_slope_windows,
                drift_window=min(config.hi_windows, default=1),
                min_window=config.hi_min_window,
                last_value=False,
            )
            parts.append(np.stack(hi_blocks, axis=2))
        if config.include_age:
            parts.append(np.broadcast_to((positions + 1.0)[:, None, None], (n_rows, n_variants, 1)))
        features = np.concatenate(parts, axis=2)
        result: npt.NDArray[np.float64] = features[-1:] if last_only else features
        return result


def _regimes_and_settings(*, frame: pd.DataFrame, regimes: RegimeModel) -> tuple[np.ndarray, np.ndarray]:
    """Regime of each row and its standardised settings (missing -> typical, 0)."""
    if not regimes.setting_columns:
        return np.zeros(len(frame), dtype=np.int64), np.zeros((len(frame), 0))
    settings = frame.loc[:, list(regimes.setting_columns)].to_numpy(dtype=np.float64)
    settings = np.where(np.isnan(settings), regimes.setting_mean, settings)
    return regimes.assign(settings), (settings - regimes.setting_mean) / regimes.setting_scale


def _feature_layout(builder: FeatureBuilder) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    config = builder.config
    suffixes = ["last"]
    for window in config.windows:
        suffixes += [f"mean_{window}", f"std_{window}", f"slope_{window}"]
    suffixes += [f"ewm_{span}" for span in config.ewm_spans]
    suffixes.append("drift")
    names: list[str] = []
    owners: list[str | None] = []
    for channel in builder.channels:
        for suffix in suffixes:
            names.append(f"{channel}__{suffix}")
            owners.append(channel)
    if builder.health_indicator is not None:
        hi_suffixes = [f"mean_{w}" for w in config.hi_windows]
        hi_suffixes += [f"ewm_{span}" for span in config.hi_ewm_spans]
        hi_suffixes += [f"slope_{w}" for w in config.hi_slope_windows]
        hi_suffixes += ["drift", f"min_{config.hi_min_window}"]
        names += [f"{HEALTH_INDICATOR}__{suffix}" for suffix in hi_suffixes]
        owners += [None] * len(hi_suffixes)
    if config.include_age:
        names.append(AGE_FEATURE)
        owners.append(None)
    return tuple(names), tuple(owners)


def fit_feature_builder(
    *,
    frames: Sequence[pd.DataFrame],
    setting_columns: Sequence[str] = (),
    channels: Sequence[str] | None = None,
    config: FeatureConfig | None = None,
) -> FeatureBuilder:
    """Fit regimes, setting compensation, channel selection and normalisation.

    ``channels`` defaults to every column that is not a setting column. Only
    pass training frames here: the statistics become part of the model.
    """
    config = config or FeatureConfig()
    if not frames:
        raise ValueError("need at least one frame to fit features")
    settings = tuple(setting_columns)
    if channels is None:
        channels = [c for c in frames[0].columns if c not in settings]
    candidate = tuple(str(c) for c in channels)
    if not candidate:
        raise ValueError("no channel columns to build features from")
    combined = pd.concat([frame.loc[:, list(candidate + settings)] for frame in frames], ignore_index=True)
    non_numeric = [c for c in combined.columns if not pd.api.types.is_numeric_dtype(combined[c])]
    if non_numeric:
        raise ValueError(f"columns {non_numeric} are not numeric")

    regimes = _fit_regimes(
        settings=combined.loc[:, list(settings)].to_numpy(dtype=np.float64),
        columns=settings,
        config=config,
    )
    regime, scaled_settings = _regimes_and_settings(frame=combined, regimes=regimes)

    kept: list[str] = []
    dropped: list[str] = []
    for channel in candidate:
        series = combined[channel].dropna()
        if series.empty:
            dropped.append(channel)
            continue
        # Quasi-constant within the regimes: judge the most common value's
        # share per regime, weighted by regime size.
        share = 0.0
        for r in range(regimes.n_regimes):
            in_regime = combined.loc[regime == r, channel].dropna()
            if len(in_regime):
                share += in_regime.value_counts(normalize=True).iloc[0] * len(in_regime)
        share /= len(series)
        if share >= config.quasi_constant_share:
            dropped.append(channel)
        else:
            kept.append(channel)
    if not kept:
        raise ValueError("every channel is constant in the training data")

    values = combined.loc[:, kept].to_numpy(dtype=np.float64)
    n_settings = scaled_settings.shape[1]
    mean = np.zeros((regimes.n_regimes, len(kept)))
    std = np.ones((regimes.n_regimes, len(kept)))
    coefficients = np.zeros((regimes.n_regimes, n_settings, len(kept)))
    overall_mean = np.nanmean(values, axis=0)
    overall_std = np.nanstd(values, axis=0)
    for r in range(regimes.n_regimes):
        in_regime = regime == r
        x = values[in_regime]
        if len(x) == 0:
            mean[r], std[r] = overall_mean, overall_std
            continue
        x_mean = np.nanmean(x, axis=0)
        residual = x - x_mean
        if n_settings and len(x) > n_settings + 2:
            settings_r = scaled_settings[in_regime]
            s_mean = settings_r.mean(axis=0)
            centred_s = settings_r - s_mean
            filled = np.nan_to_num(residual, nan=0.0)
            # Ridge (alpha = 1 row's worth) keeps constant or collinear
            # settings from producing huge opposite coefficients.
            gram = centred_s.T @ centred_s + np.eye(n_settings)
            coef = np.linalg.solve(gram, centred_s.T @ filled)
            fitted = centred_s @ coef
            with np.errstate(invalid="ignore", divide="ignore"):
                explained = 1.0 - np.nanvar(residual - fitted, axis=0) / np.nanvar(residual, axis=0)
            coef[:, ~(np.nan_to_num(explained) >= config.min_setting_explained)] = 0.0
            coefficients[r] = coef
            x_mean = x_mean - s_mean @ coef  # intercept at standardised settings = 0
            residual = x - x_mean - settings_r @ coef
        mean[r] = x_mean
        std[r] = np.nanstd(residual, axis=0)
    # A channel constant within one regime but not overall must not divide
    # by zero; fall back to its overall spread.
    std = np.where(std > 1e-12, std, np.where(overall_std > 1e-12, overall_std, 1.0))
    return FeatureBuilder(
        config=config,
        channels=tuple(kept),
        dropped_channels=tuple(dropped),
        regimes=regimes,
        channel_mean=mean,
        channel_std=std,
        setting_coefficients=coefficients if np.any(coefficients) else None,
    )


def fit_health_indicator(
    *, builder: FeatureBuilder, frames: Sequence[pd.DataFrame], targets: Sequence[np.ndarray], cap: float
) -> FeatureBuilder:
    """Return ``builder`` with a health indicator fitted to ``targets`` (capped RUL per row).

    The ridge fit uses only rows below the cap: above it the target is flat
    by construction and would pull the combination towards noise.
    """
    if len(frames) != len(targets):
        raise ValueError("need one target array per frame")
    values = np.vstack([np.nan_to_num(builder.normalise(frame).to_numpy(), nan=0.0) for frame in frames])
    target = np.concatenate([np.asarray(t, dtype=np.float64) for t in targets])
    if len(values) != len(target):
        raise ValueError("targets must have one value per row")
    degrading = target < cap
    if degrading.sum() > 2 * values.shape[1]:
        values, target = values[degrading], target[degrading]
    mean_x = values.mean(axis=0)
    mean_y = float(target.mean())
    centred = values - mean_x
    gram = centred.T @ centred + builder.config.hi_ridge_alpha * np.eye(values.shape[1])
    weights = np.linalg.solve(gram, centred.T @ (target - mean_y))
    indicator = HealthIndicator(weights=weights, intercept=mean_y - float(mean_x @ weights))
    return replace(builder, health_indicator=indicator)
