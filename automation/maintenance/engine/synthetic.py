"""Seeded generator of run-to-failure telemetry with known ground truth.

Tests need data whose answer is known: when each asset fails, when its
degradation starts, which channels degrade, and where anomalies were injected.
The model of an asset is deliberately simple but has the properties the
engine must cope with:

* a shared ``load`` drives several channels, so channels are correlated
  (cross-channel detection must learn that, per-channel detection cannot);
  it is unmeasured by default, or a ``load`` setting column with
  ``observed_load=True`` (as a measured line speed or throughput would be);
* each asset has its own offsets (manufacturing variation), so absolute levels
  alone do not reveal wear;
* degradation starts at an onset and grows exponentially to 1 at failure,
  added to the degrading channels with a per-channel gain;
* optional operating regimes shift channel levels, exercising per-regime
  normalisation;
* optional injected anomalies are level shifts of a known size (in units of
  the channel's noise) on a known channel over known rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SyntheticChannel:
    name: str
    level: float
    noise: float
    load_gain: float = 0.0
    degradation_gain: float = 0.0  # added at failure; 0 means the channel never degrades
    asset_offset: float = 0.0  # std of the per-asset level offset


DEFAULT_CHANNELS: tuple[SyntheticChannel, ...] = (
    SyntheticChannel("vibration", level=1.0, noise=0.05, load_gain=0.30, degradation_gain=0.60, asset_offset=0.05),
    SyntheticChannel("temperature", level=70.0, noise=0.8, load_gain=5.0, degradation_gain=6.0, asset_offset=1.0),
    SyntheticChannel("pressure", level=5.0, noise=0.10, load_gain=0.5, degradation_gain=-0.8, asset_offset=0.1),
    SyntheticChannel("current", level=12.0, noise=0.30, load_gain=3.0, asset_offset=0.3),
    SyntheticChannel("flow", level=30.0, noise=0.5, asset_offset=0.5),
    SyntheticChannel("humidity", level=40.0, noise=1.0),
)


@dataclass(frozen=True)
class AnomalySpec:
    """Inject a level shift of ``magnitude`` x channel noise on one asset."""

    asset_index: int
    channel: str
    start: int  # 0-based row position
    duration: int
    magnitude: float


@dataclass(frozen=True)
class InjectedAnomaly:
    asset_id: str
    channel: str
    start: int  # index label (cycle) of the first affected row
    end: int  # index label of the last affected row
    magnitude: float


@dataclass(frozen=True)
class AssetTruth:
    failure_cycle: int  # index label of the last row (the failure); RUL there is 0
    onset_cycle: int | None  # first cycle with degradation, None when not degrading
    degrading_channels: tuple[str, ...]


@dataclass(frozen=True)
class SyntheticFleet:
    histories: list[tuple[str, pd.DataFrame]]
    truth: dict[str, AssetTruth]
    anomalies: list[InjectedAnomaly]
    setting_columns: tuple[str, ...]


def _load_signal(*, rng: np.random.Generator, length: int) -> np.ndarray:
    # AR(1) with strong persistence: load changes slowly, like a production
    # schedule, and has unit stationary variance.
    phi = 0.95
    shocks = rng.normal(0.0, np.sqrt(1 - phi**2), size=length)
    load = np.empty(length)
    load[0] = rng.normal()
    for i in range(1, length):
        load[i] = phi * load[i - 1] + shocks[i]
    return load


def generate_fleet(
    *,
    n_assets: int = 20,
    seed: int = 0,
    channels: Sequence[SyntheticChannel] = DEFAULT_CHANNELS,
    min_life: int = 150,
    max_life: int = 300,
    min_degradation: int = 60,
    max_degradation: int = 130,
    degradation_rate: float = 3.0,
    degrading: bool = True,
    n_regimes: int = 0,
    observed_load: bool = False,
    anomalies: Sequence[AnomalySpec] = (),
    asset_prefix: str = "asset",
) -> SyntheticFleet:
    """Generate ``n_assets`` histories indexed by ``cycle`` (1-based).

    With ``degrading=True`` each history ends at its failure (RUL 0 on the last
    row), which is what ``train_rul_model`` expects. With ``degrading=False``
    the assets run for their drawn life without any wear: clean data for
    false-alarm tests.
    """
    if n_assets < 1:
        raise ValueError("n_assets must be at least 1")
    if not (0 < min_degradation <= max_degradation < min_life <= max_life):
        raise ValueError("need 0 < min_degradation <= max_degradation < min_life <= max_life")
    names = [channel.name for channel in channels]
    if len(set(names)) != len(names):
        raise ValueError("channel names must be unique")
    known = set(names)
    for spec in anomalies:
        if spec.channel not in known:
            raise ValueError(f"anomaly on unknown channel {spec.channel!r}")
        if not 0 <= spec.asset_index < n_assets:
            raise ValueError(f"anomaly on asset index {spec.asset_index} out of range")

    rng = np.random.default_rng(seed)
    regime_offsets = None
    if n_regimes > 0:
        # Regimes move every channel a lot (several noise std), as flight
        # conditions do in C-MAPSS; without per-regime normalisation the
        # degradation would be buried.
        regime_offsets = rng.normal(0.0, 1.0, size=(n_regimes, len(channels))) * np.array(
            [10 * c.noise + abs(c.degradation_gain) for c in channels]
        )
    setting_columns = (("setting_1",) if n_regimes > 0 else ()) + (("load",) if observed_load else ())

    histories: list[tuple[str, pd.DataFrame]] = []
    truth: dict[str, AssetTruth] = {}
    injected: list[InjectedAnomaly] = []
    width = len(str(n_assets))
    for index in range(n_assets):
        asset_id = f"{asset_prefix}-{index + 1:0{width}d}"
        life = int(rng.integers(min_life, max_life + 1))
        span = int(rng.integers(min_degradation, max_degradation + 1))
        onset_position = life - span
        positions = np.arange(life)
        load = _load_signal(rng=rng, length=life)
        if degrading:
            progress = np.clip((positions - onset_position) / (span - 1), 0.0, 1.0)
            wear = np.expm1(degradation_rate * progress) / np.expm1(degradation_rate)
        else:
            wear = np.zeros(life)
        data: dict[str, np.ndarray] = {}
        regimes = rng.integers(0, n_regimes, size=life) if regime_offsets is not None else None
        for column, channel in enumerate(channels):
            offset = rng.normal(0.0, channel.asset_offset) if channel.asset_offset else 0.0
            values = (
                channel.level
                + offset
                + channel.load_gain * load
                + channel.degradation_gain * wear
                + rng.normal(0.0, channel.noise, size=life)
            )
            if regimes is not None and regime_offsets is not None:  # set together
                values = values + regime_offsets[regimes, column]
            data[channel.name] = values
        cycles = positions + 1
        for spec in anomalies:
            if spec.asset_index != index:
                continue
            stop = min(spec.start + spec.duration, life)
            if spec.start >= stop:
                raise ValueError(f"anomaly on asset index {index} starts after its life ({life})")
            channel = next(c for c in channels if c.name == spec.channel)
            data[spec.channel][spec.start : stop] += spec.magnitude * channel.noise
            injected.append(
                InjectedAnomaly(
                    asset_id=asset_id,
                    channel=spec.channel,
                    start=int(cycles[spec.start]),
                    end=int(cycles[stop - 1]),
                    magnitude=spec.magnitude,
                )
            )
        frame = pd.DataFrame(data, index=pd.Index(cycles, name="cycle"))
        if observed_load:
            # Measured with a little noise of its own, like any sensor.
            frame.insert(0, "load", load + rng.normal(0.0, 0.02, size=life))
        if regimes is not None:
            frame.insert(0, "setting_1", regimes.astype(np.float64))
        histories.append((asset_id, frame))
        truth[asset_id] = AssetTruth(
            failure_cycle=int(cycles[-1]),
            onset_cycle=int(cycles[onset_position]) if degrading else None,
            degrading_channels=tuple(c.name for c in channels if c.degradation_gain and degrading),
        )
    return SyntheticFleet(
        histories=histories,
        truth=truth,
        anomalies=injected,
        setting_columns=setting_columns,
    )


def true_rul(*, frame: pd.DataFrame, failure_cycle: int) -> np.ndarray:
    """Ground-truth RUL per row of a (possibly truncated) history."""
    return failure_cycle - np.asarray(frame.index, dtype=np.float64)
