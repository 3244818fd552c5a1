"""Feature pipeline: causal, deterministic, regime-aware, drops dead channels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automation.maintenance.engine.features import (
    FeatureConfig,
    fit_feature_builder,
    fit_health_indicator,
)
from automation.maintenance.engine.synthetic import generate_fleet


@pytest.fixture(scope="module")
def fleet():
    return generate_fleet(n_assets=6, seed=3)


def _targets(frames, cap=125.0):
    return [np.minimum(np.arange(len(f) - 1, -1, -1, dtype=float), cap) for f in frames]


def _builder(frames):
    builder = fit_feature_builder(frames=frames)
    return fit_health_indicator(builder=builder, frames=frames, targets=_targets(frames), cap=125.0)


def test_features_are_causal_and_last_only_matches_full(fleet) -> None:
    frames = [frame for _, frame in fleet.histories]
    builder = _builder(frames)
    frame = frames[0]

    full = builder.transform(frame)
    cut = 120
    truncated = builder.transform(frame.iloc[:cut])
    last = builder.transform(frame, last_only=True)

    # Row t must not change when later rows are appended (no peeking ahead).
    np.testing.assert_allclose(truncated.to_numpy(), full.iloc[:cut].to_numpy(), rtol=1e-9, atol=1e-9)
    # The cheap tail-only path gives the full computation's last row.
    np.testing.assert_allclose(last.to_numpy(), full.iloc[[-1]].to_numpy(), rtol=1e-5, atol=1e-5)
    assert last.index[0] == frame.index[-1]
    assert full.shape == (len(frame), len(builder.feature_names))
    assert full["age"].iloc[-1] == len(frame)


def test_fit_is_deterministic(fleet) -> None:
    frames = [frame for _, frame in fleet.histories]
    first = _builder(frames).transform(frames[1]).to_numpy()
    second = _builder(frames).transform(frames[1]).to_numpy()
    np.testing.assert_array_equal(first, second)


def test_constant_and_quasi_constant_channels_are_dropped(fleet) -> None:
    frames = []
    for _, frame in fleet.histories:
        frame = frame.copy()
        frame["setpoint"] = 100.0
        frame["alarm_bit"] = 0.0
        frame.iloc[::200, frame.columns.get_loc("alarm_bit")] = 1.0  # < 1 % of rows
        frames.append(frame)

    builder = fit_feature_builder(frames=frames)

    assert set(builder.dropped_channels) == {"setpoint", "alarm_bit"}
    assert "vibration" in builder.channels
    assert not any(name.startswith("setpoint") for name in builder.feature_names)


def test_operating_regimes_are_found_and_normalised_away() -> None:
    regime_fleet = generate_fleet(n_assets=4, seed=5, n_regimes=3, degrading=False)
    frames = [frame for _, frame in regime_fleet.histories]

    builder = fit_feature_builder(frames=frames, setting_columns=regime_fleet.setting_columns)
    normalised = pd.concat([builder.normalise(frame) for frame in frames])
    settings = pd.concat([frame["setting_1"] for frame in frames])

    assert builder.regimes.n_regimes == 3
    # Within each regime every channel is centred with unit spread, so the
    # regime shifts (10+ noise std) are gone.
    for regime in range(3):
        in_regime = normalised[settings.to_numpy() == regime]
        np.testing.assert_allclose(in_regime.mean().to_numpy(), 0.0, atol=1e-9)
        np.testing.assert_allclose(in_regime.std(ddof=0).to_numpy(), 1.0, atol=1e-9)
    # Raw levels do differ by regime, so this was not trivially true.
    raw = pd.concat(frames)
    by_regime = raw.groupby("setting_1")["temperature"].mean()
    assert by_regime.max() - by_regime.min() > 5.0


def test_measured_load_is_compensated_per_channel() -> None:
    load_fleet = generate_fleet(n_assets=4, seed=6, observed_load=True, degrading=False)
    frames = [frame for _, frame in load_fleet.histories]

    builder = fit_feature_builder(frames=frames, setting_columns=load_fleet.setting_columns)
    normalised = pd.concat([builder.normalise(frame) for frame in frames])
    load = pd.concat([frame["load"] for frame in frames]).to_numpy()
    raw_current = pd.concat([frame["current"] for frame in frames]).to_numpy()

    # A continuous setting is not mistaken for regimes ...
    assert builder.regimes.n_regimes == 1
    # ... it is regressed out: current follows load almost perfectly before,
    # and not at all after.
    assert np.corrcoef(raw_current, load)[0, 1] > 0.9
    assert abs(np.corrcoef(normalised["current"], load)[0, 1]) < 0.05
    # Channels that do not follow the load are left alone.
    assert builder.setting_coefficients is not None
    coefficients = builder.setting_coefficients[0, 0]
    assert coefficients[builder.channels.index("humidity")] == 0.0
    assert coefficients[builder.channels.index("current")] > 0.0


def test_noise_like_settings_stay_one_regime(fleet) -> None:
    rng = np.random.default_rng(0)
    frames = []
    for _, frame in fleet.histories:
        frame = frame.copy()
        frame["setting_1"] = rng.normal(0.0, 0.002, size=len(frame))
        frames.append(frame)

    builder = fit_feature_builder(frames=frames, setting_columns=["setting_1"])

    assert builder.regimes.n_regimes == 1
    assert "setting_1" not in builder.channels


def test_health_indicator_tracks_remaining_life(fleet) -> None:
    frames = [frame for _, frame in fleet.histories]
    builder = _builder(frames[:5])
    held_out = frames[5]
    indicator = builder.transform(held_out)["health_indicator__mean_10"].to_numpy()
    rul = np.arange(len(held_out) - 1, -1, -1)

    def mean_between(low, high):
        return indicator[(rul >= low) & (rul < high)].mean()

    # Fitted on other assets, it is in RUL units and falls as failure nears:
    # far lower in the last 15 cycles than while healthy, and ordered.
    healthy, late, last = mean_between(125, 10_000), mean_between(15, 40), mean_between(0, 15)
    assert last < late < healthy
    assert healthy - last > 30


def test_rejects_non_numeric_channels(fleet) -> None:
    frame = fleet.histories[0][1].copy()
    frame["operator"] = "alice"
    with pytest.raises(ValueError, match="not numeric"):
        fit_feature_builder(frames=[frame])


def test_config_rejects_degenerate_windows() -> None:
    with pytest.raises(ValueError):
        FeatureConfig(windows=(1,))
