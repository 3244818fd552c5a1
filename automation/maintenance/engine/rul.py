"""Remaining-useful-life (RUL) regression from run-to-failure histories.

Target: piecewise-linear RUL capped at ``cap`` cycles (125 is the usual
C-MAPSS choice). Early in life the sensors show no wear, so the true RUL is
unknowable from them; asking a model to tell 300 from 200 cycles left only
teaches it noise. Capping says "healthy, at least ``cap`` left" instead.

Features: see ``features.py``; the learned health indicator and its
trajectory (degradation rate over long windows) carry most of the signal.

Model: scikit-learn ``HistGradientBoostingRegressor``, a small seeded
ensemble of them, each looking at a random half of the features at every
split. Why: it trains in seconds on tens of thousands of rows on two CPU
cores, handles missing values natively (windows at the start of a history,
gaps in telemetry), needs no feature scaling, is deterministic with a seed,
and is already a dependency through scikit-learn: no GPU, no new package.
Gradient-boosted trees on windowed features are competitive with deep models
on C-MAPSS-like data at a fraction of the training cost.

Uncertainty band: residual quantiles from out-of-fold predictions, folds
grouped by asset, binned by predicted RUL (errors are small near failure and
large mid-life). Grouping by asset matters: the band must cover how wrong we
are on an asset we never trained on, which is the production situation.

Drivers ("which channels drive it"): per prediction, each channel in turn is
"healed" (the drift of its level away from the asset's own early-life level
is removed over the whole history, see ``FeatureBuilder.transform_healed``),
features including the health indicator are recomputed and the model is
re-evaluated; the RUL gained is how many cycles that channel's current state
is costing. It costs one extra evaluation per channel, batched into one
model call, and answers the operator's question directly ("if the vibration
had stayed as it was we would predict 40 more cycles"). Effects of channels
that only matter together are not split out. ``channel_importance`` is the
same effect averaged over held-out assets' degrading rows.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from automation.maintenance.engine.features import (
    FeatureBuilder,
    FeatureConfig,
    fit_feature_builder,
    fit_health_indicator,
)
from automation.maintenance.engine.serialization import dump_artifact, load_artifact

_ARTIFACT_KIND = "rul-model"


@dataclass(frozen=True)
class RulConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    n_models: int = 2
    max_iter: int = 200
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 50
    l2_regularization: float = 1.0
    max_features: float = 0.5
    # Consecutive rows of one asset are near-duplicates (features are
    # windows over the same history), so beyond this many training rows
    # every k-th row per asset is used: training time halves on C-MAPSS at
    # no measurable cost in accuracy. None trains on every row.
    max_training_rows: int | None = 10_000
    # Out-of-fold models (grouped by asset) calibrate the band and measure
    # channel importance; they cost ``oof_folds`` x ``oof_models`` extra fits.
    # One member per fold is enough there: its residuals are a little larger
    # than the ensemble's, so the band errs on the wide (safe) side.
    oof_folds: int = 3
    oof_models: int = 1
    # Threads for model training and prediction. 1 by default: training runs
    # inside job workers that already run one job per core, and OpenMP
    # threads that spin on busy cores cost 2-3x CPU for no wall-clock gain
    # (measured on the shared 2-core dev machine). None = every core.
    n_threads: int | None = 1
    band_quantiles: tuple[float, float] = (0.1, 0.9)
    band_bins: int = 6
    n_drivers: int = 3
    # A channel is reported as a driver only if healing it would add at
    # least this many cycles and at least this share of the top driver's
    # effect: operators want the channels that matter, not every small
    # wiggle of a noise channel.
    min_driver_effect: float = 2.0
    min_driver_share: float = 0.25

    def __post_init__(self) -> None:
        low, high = self.band_quantiles
        if not 0 < low < high < 1:
            raise ValueError("band_quantiles must satisfy 0 < low < high < 1")
        if self.n_models < 1 or self.oof_models < 1:
            raise ValueError("n_models and oof_models must be at least 1")
        if self.oof_folds < 2:
            raise ValueError("oof_folds must be at least 2")


@dataclass(frozen=True)
class Driver:
    channel: str
    effect: float  # cycles of RUL gained if this channel looked healthy


@dataclass(frozen=True)
class RulPrediction:
    rul: float
    low: float
    high: float
    drivers: tuple[Driver, ...]
    cap: float  # a prediction at the cap means "at least cap cycles"
    as_of: Hashable = None  # index label of the last row the prediction uses

    @property
    def at_cap(self) -> bool:
        return self.rul >= self.cap - 0.5


@dataclass(frozen=True)
class TrainingSummary:
    n_assets: int
    n_rows: int
    oof_rmse: float  # on the capped target, all rows of held-out assets
    band_coverage: float  # out-of-fold share of rows inside the band
    seconds: float
    library_versions: Mapping[str, str]


@dataclass(frozen=True)
class _Band:
    edges: np.ndarray  # inner bin edges on the predicted RUL
    low: np.ndarray  # residual quantile per bin (truth - prediction)
    high: np.ndarray

    def apply(self, prediction: np.ndarray, *, cap: float) -> tuple[np.ndarray, np.ndarray]:
        bins = np.searchsorted(self.edges, prediction, side="right")
        low = np.clip(prediction + self.low[bins], 0.0, cap)
        high = np.clip(prediction + self.high[bins], 0.0, cap)
        return np.minimum(low, prediction), np.maximum(high, prediction)


def _fit_band(*, prediction: np.ndarray, target: np.ndarray, config: RulConfig) -> _Band:
    residual = target - prediction
    quantiles = np.linspace(0, 1, config.band_bins + 1)[1:-1]
    edges = np.unique(np.quantile(prediction, quantiles))
    bins = np.searchsorted(edges, prediction, side="right")
    low_q, high_q = config.band_quantiles
    low = np.empty(len(edges) + 1)
    high = np.empty(len(edges) + 1)
    for b in range(len(edges) + 1):
        in_bin = residual[bins == b]
        if len(in_bin) == 0:
            in_bin = residual
        low[b] = np.quantile(in_bin, low_q)
        high[b] = np.quantile(in_bin, high_q)
    return _Band(edges=edges, low=low, high=high)


def _capped_target(*, length: int, cap: float) -> np.ndarray:
    # The last row is the failure: RUL 0 there, counting up backwards.
    return np.minimum(np.arange(length - 1, -1, -1, dtype=np.float64), cap)


def _fit_builder(
    *,
    frames: Sequence[pd.DataFrame],
    cap: float,
    setting_columns: Sequence[str],
    channels: Sequence[str] | None,
    config: FeatureConfig,
) -> tuple[FeatureBuilder, np.ndarray, np.ndarray]:
    """Fit the feature pipeline (with health indicator) and build the design matrix."""
    builder = fit_feature_builder(frames=frames, setting_columns=setting_columns, channels=channels, config=config)
    targets = [_capped_target(length=len(frame), cap=cap) for frame in frames]
    builder = fit_health_indicator(builder=builder, frames=frames, targets=targets, cap=cap)
    x = np.vstack([builder.transform(frame).to_numpy() for frame in frames])
    return builder, x, np.concatenate(targets)


def _fit_ensemble(
    *, x: np.ndarray, y: np.ndarray, config: RulConfig, n_models: int, random_state: int
) -> list[Any]:  # fitted sklearn regressors (sklearn is not followed)
    from sklearn.ensemble import HistGradientBoostingRegressor

    if config.max_training_rows and len(y) > config.max_training_rows:
        # Deterministic thinning: one row in every ``stride``, so every asset
        # keeps rows spread over its whole life, failure end included.
        stride = int(np.ceil(len(y) / config.max_training_rows))
        keep = np.arange(len(y)) % stride == 0
        x, y = x[keep], y[keep]

    models = []
    for member in range(n_models):
        model = HistGradientBoostingRegressor(
            loss="squared_error",
            learning_rate=config.learning_rate,
            max_iter=config.max_iter,
            max_leaf_nodes=config.max_leaf_nodes,
            min_samples_leaf=config.min_samples_leaf,
            l2_regularization=config.l2_regularization,
            max_features=config.max_features,
            # A fixed number of boosting rounds keeps training deterministic
            # and avoids holding out rows from small fleets.
            early_stopping=False,
            random_state=random_state + member,
        )
        models.append(model.fit(x, y))
    return models


def _thread_limit(n_threads: int | None) -> AbstractContextManager[object]:
    from contextlib import nullcontext

    if n_threads is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    limits: AbstractContextManager[object] = threadpool_limits(limits=n_threads)  # untyped package
    return limits


def _predict_ensemble(models: Sequence[Any], x: np.ndarray, *, cap: float) -> np.ndarray:
    prediction = np.mean([model.predict(x) for model in models], axis=0)
    clipped: npt.NDArray[np.float64] = np.clip(prediction, 0.0, cap)
    return clipped


def _asset_folds(*, n_assets: int, n_folds: int, random_state: int) -> list[np.ndarray]:
    order = np.random.default_rng(random_state).permutation(n_assets)
    return [fold for fold in np.array_split(order, n_folds) if len(fold)]


def _healing_importance(
    *, models: Sequence[Any], builder: FeatureBuilder, frames: Sequence[pd.DataFrame], cap: float, stride: int = 5
) -> dict[str, float]:
    # Global version of the drivers: on held-out assets' degrading rows, the
    # mean RUL gained by healing each channel (negative gains count as 0:
    # when the load is not measured, healing a load-following channel can
    # break the load cancellation the health indicator learned between
    # channels, which is not that channel "driving" wear).
    # Says which channels the model reads wear from, in cycles; permutation
    # importance would miss that a channel also acts through the indicator.
    effects: list[np.ndarray] = []
    for frame in frames:
        target = _capped_target(length=len(frame), cap=cap)
        rows = np.flatnonzero(target < cap)[::stride]
        if len(rows) == 0:
            continue
        variants = builder.transform_healed(frame, last_only=False)[rows]
        scored = _predict_ensemble(models, variants.reshape(-1, variants.shape[2]), cap=cap).reshape(len(rows), -1)
        effects.append(np.maximum(scored[:, 1:] - scored[:, :1], 0.0))
    if not effects:
        return {channel: 0.0 for channel in builder.channels}
    mean_effect = np.vstack(effects).mean(axis=0)
    return {channel: float(mean_effect[c]) for c, channel in enumerate(builder.channels)}


@dataclass(frozen=True)
class RulModel:
    """Trained RUL model; build with ``train_rul_model``."""

    builder: FeatureBuilder
    models: tuple[Any, ...]
    cap: float
    band: _Band
    channel_importance: Mapping[str, float]
    config: RulConfig
    summary: TrainingSummary

    @property
    def channels(self) -> tuple[str, ...]:
        return self.builder.channels

    @property
    def setting_columns(self) -> tuple[str, ...]:
        return self.builder.regimes.setting_columns

    def predict(self, frame: pd.DataFrame, *, explain: bool = True) -> RulPrediction:
        """RUL at the last row of ``frame`` (the asset's history so far)."""
        return self.predict_many({None: frame}, explain=explain)[None]

    def predict_many(
        self, frames: Mapping[Hashable, pd.DataFrame], *, explain: bool = True
    ) -> dict[Hashable, RulPrediction]:
        """Score several assets in one batched model call.

        ``explain=False`` skips the drivers (one extra evaluation per channel).
        """
        keys = list(frames)
        if not keys:
            return {}
        n_channels = len(self.builder.channels)
        if explain:
            blocks = [self.builder.transform_healed(frames[key])[0] for key in keys]
        else:
            blocks = [self.builder.transform(frames[key], last_only=True).to_numpy() for key in keys]
        rows_per_key = blocks[0].shape[0]
        with _thread_limit(self.config.n_threads):
            scored = _predict_ensemble(self.models, np.vstack(blocks), cap=self.cap).reshape(len(keys), rows_per_key)
        rul = scored[:, 0]
        low, high = self.band.apply(rul, cap=self.cap)
        results: dict[Hashable, RulPrediction] = {}
        for i, key in enumerate(keys):
            drivers: tuple[Driver, ...] = ()
            if explain and n_channels:
                effects = scored[i, 1:] - rul[i]
                order = np.argsort(-effects, kind="stable")
                threshold = max(self.config.min_driver_effect, self.config.min_driver_share * effects[order[0]])
                drivers = tuple(
                    Driver(channel=self.builder.channels[c], effect=float(effects[c]))
                    for c in order[: self.config.n_drivers]
                    if effects[c] >= threshold
                )
            results[key] = RulPrediction(
                rul=float(rul[i]),
                low=float(low[i]),
                high=float(high[i]),
                drivers=drivers,
                cap=self.cap,
                as_of=frames[key].index[-1],
            )
        return results

    def predict_trajectory(self, frame: pd.DataFrame) -> pd.DataFrame:
        """RUL, low and high at every row of ``frame`` (for charts; no drivers)."""
        rows = self.builder.transform(frame).to_numpy()
        with _thread_limit(self.config.n_threads):
            rul = _predict_ensemble(self.models, rows, cap=self.cap)
        low, high = self.band.apply(rul, cap=self.cap)
        return pd.DataFrame({"rul": rul, "low": low, "high": high}, index=frame.index)

    def to_bytes(self) -> bytes:
        return dump_artifact(obj=self, kind=_ARTIFACT_KIND)

    @classmethod
    def from_bytes(cls, data: bytes) -> RulModel:
        return load_artifact(data=data, kind=_ARTIFACT_KIND, expected_type=cls)


def _out_of_fold(
    *,
    frames: Sequence[pd.DataFrame],
    cap: float,
    setting_columns: Sequence[str],
    channels: Sequence[str] | None,
    config: RulConfig,
    random_state: int,
) -> tuple[_Band, dict[str, float], tuple[np.ndarray, np.ndarray]]:
    """Band calibration and channel importance from asset-grouped folds.

    Features (normalisation and health indicator) are refitted on each fold's
    training assets, so held-out assets never influence their own features.
    """
    folds = _asset_folds(n_assets=len(frames), n_folds=min(config.oof_folds, len(frames)), random_state=random_state)
    predictions: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    importance: dict[str, float] = {}
    for fold in folds:
        held_out = set(fold.tolist())
        train_frames = [frame for i, frame in enumerate(frames) if i not in held_out]
        test_frames = [frames[i] for i in fold]
        builder, x_train, y_train = _fit_builder(
            frames=train_frames, cap=cap, setting_columns=setting_columns, channels=channels, config=config.features
        )
        x_test = np.vstack([builder.transform(frame).to_numpy() for frame in test_frames])
        y_test = np.concatenate([_capped_target(length=len(frame), cap=cap) for frame in test_frames])
        models = _fit_ensemble(
            x=x_train, y=y_train, config=config, n_models=config.oof_models, random_state=random_state
        )
        predictions.append(_predict_ensemble(models, x_test, cap=cap))
        targets.append(y_test)
        fold_importance = _healing_importance(models=models, builder=builder, frames=test_frames, cap=cap)
        for channel, value in fold_importance.items():
            importance[channel] = importance.get(channel, 0.0) + value / len(folds)
    prediction = np.concatenate(predictions)
    target = np.concatenate(targets)
    return _fit_band(prediction=prediction, target=target, config=config), importance, (prediction, target)


def _validate_histories(histories: Sequence[tuple[Hashable, pd.DataFrame]]) -> None:
    if len(histories) < 2:
        raise ValueError("need run-to-failure histories of at least 2 assets")
    ids = [asset_id for asset_id, _ in histories]
    if len(set(ids)) != len(ids):
        raise ValueError("asset ids in histories must be unique")
    for asset_id, frame in histories:
        if len(frame) < 2:
            raise ValueError(f"history of asset {asset_id!r} has fewer than 2 rows")
        if not frame.index.is_monotonic_increasing:
            raise ValueError(f"history of asset {asset_id!r} is not sorted by time")


def train_rul_model(
    *,
    histories: Sequence[tuple[Hashable, pd.DataFrame]],
    cap: float = 125.0,
    setting_columns: Sequence[str] = (),
    channels: Sequence[str] | None = None,
    config: RulConfig | None = None,
    random_state: int = 0,
) -> RulModel:
    """Train on run-to-failure histories: ``[(asset_id, frame)]``, last row = failure.

    Frames are indexed by cycle/time (evenly spaced rows), one column per
    channel plus optional operating-setting columns. RUL is counted in rows.
    """
    import joblib
    import sklearn

    config = config or RulConfig()
    if cap <= 0:
        raise ValueError("cap must be positive")
    _validate_histories(histories)
    started = time.perf_counter()
    frames = [frame for _, frame in histories]
    with _thread_limit(config.n_threads):
        band, importance, oof = _out_of_fold(
            frames=frames,
            cap=cap,
            setting_columns=setting_columns,
            channels=channels,
            config=config,
            random_state=random_state,
        )
        builder, x, y = _fit_builder(
            frames=frames, cap=cap, setting_columns=setting_columns, channels=channels, config=config.features
        )
        models = _fit_ensemble(x=x, y=y, config=config, n_models=config.n_models, random_state=random_state)
    prediction, target = oof
    low, high = band.apply(prediction, cap=cap)

    summary = TrainingSummary(
        n_assets=len(frames),
        n_rows=len(y),
        oof_rmse=float(np.sqrt(np.mean((prediction - target) ** 2))),
        band_coverage=float(np.mean((target >= low) & (target <= high))),
        seconds=time.perf_counter() - started,
        library_versions={
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "joblib": joblib.__version__,
        },
    )
    importance = {channel: importance.get(channel, 0.0) for channel in builder.channels}
    return RulModel(
        builder=builder,
        models=tuple(models),
        cap=float(cap),
        band=band,
        channel_importance=dict(sorted(importance.items(), key=lambda item: -item[1])),
        config=config,
        summary=summary,
    )
