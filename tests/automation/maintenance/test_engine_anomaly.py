"""Anomaly detection on synthetic data with anomalies injected at known places."""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest

from automation.maintenance.engine.anomaly import (
    MULTIVARIATE,
    HealthyBaseline,
    detect_anomalies,
    fit_healthy_baseline,
)
from automation.maintenance.engine.serialization import ModelFormatError
from automation.maintenance.engine.synthetic import AnomalySpec, generate_fleet


def _overlaps(anomaly, injected) -> bool:
    return anomaly.start <= injected.end and anomaly.end >= injected.start


@pytest.fixture(scope="module")
def baseline() -> HealthyBaseline:
    # Per asset type: healthy data of other assets of the same type.
    healthy = generate_fleet(n_assets=5, seed=100, degrading=False)
    return fit_healthy_baseline(frames=[frame for _, frame in healthy.histories])


def test_injected_anomalies_are_found_at_the_right_time(baseline) -> None:
    specs = [
        # Channels without load coupling: a plain level shift, caught per channel.
        AnomalySpec(asset_index=0, channel="flow", start=100, duration=10, magnitude=8.0),
        AnomalySpec(asset_index=1, channel="humidity", start=40, duration=12, magnitude=7.0),
        # Motor current follows the (unmeasured) load, its usual range is
        # ~10x its noise: a 12-noise-std shift stays inside that range
        # (|z| ~ 1), so only the cross-channel check can see that it no
        # longer matches the load that vibration and temperature show.
        AnomalySpec(asset_index=2, channel="current", start=70, duration=12, magnitude=12.0),
    ]
    fleet = generate_fleet(n_assets=3, seed=11, degrading=False, min_life=150, max_life=160, anomalies=specs)
    frames = dict(fleet.histories)

    for injected in fleet.anomalies:
        found = detect_anomalies(frame=frames[injected.asset_id], baseline=baseline)
        expected_channel = MULTIVARIATE if injected.channel == "current" else injected.channel
        matches = [a for a in found if a.channel == expected_channel and _overlaps(a, injected)]
        assert len(matches) == 1, (injected, found)
        (match,) = matches
        # the fleet's frames are indexed by cycle number
        assert abs(cast(int, match.start) - injected.start) <= 2
        assert abs(cast(int, match.end) - injected.end) <= 2
        assert match.score > 4.0
        assert not match.ongoing
        # Nothing is reported away from the injected window.
        assert all(_overlaps(a, injected) for a in found), found
        if injected.channel == "current":
            assert not any(a.channel == "current" for a in found)


def test_clean_data_gives_almost_no_false_alarms(baseline) -> None:
    clean = generate_fleet(n_assets=12, seed=200, degrading=False)
    rows = 0
    alarms = []
    for _, frame in clean.histories:
        rows += len(frame)
        alarms += detect_anomalies(frame=frame, baseline=baseline)
    assert rows > 2500
    assert len(alarms) <= 1, alarms


def test_a_single_spike_needs_persistence(baseline) -> None:
    fleet = generate_fleet(n_assets=1, seed=12, degrading=False)
    frame = fleet.histories[0][1].copy()
    frame.iloc[50, frame.columns.get_loc("flow")] += 50.0

    persistent = detect_anomalies(frame=frame, baseline=baseline, multivariate=False)
    any_sample = detect_anomalies(frame=frame, baseline=baseline, multivariate=False, min_duration=1)

    assert persistent == []
    assert [(a.channel, a.start, a.end) for a in any_sample] == [("flow", 51, 51)]


def test_degradation_shows_as_ongoing_anomaly_on_degrading_channels(baseline) -> None:
    fleet = generate_fleet(n_assets=1, seed=13)
    frame = fleet.histories[0][1]

    found = detect_anomalies(frame=frame, baseline=baseline)
    ongoing = {a.channel for a in found if a.ongoing}

    assert ongoing, found
    assert ongoing <= set(fleet.truth[fleet.histories[0][0]].degrading_channels) | {MULTIVARIATE}
    onset = fleet.truth[fleet.histories[0][0]].onset_cycle
    assert onset is not None  # a degrading fleet
    assert all(cast(int, a.start) >= onset for a in found)


def test_missing_values_are_not_flagged(baseline) -> None:
    frame = generate_fleet(n_assets=1, seed=14, degrading=False).histories[0][1].copy()
    frame.iloc[10:20, frame.columns.get_loc("flow")] = np.nan
    assert detect_anomalies(frame=frame, baseline=baseline) == []


def test_baseline_round_trips_through_bytes(baseline) -> None:
    frame = generate_fleet(n_assets=1, seed=15, degrading=False).histories[0][1]
    restored = HealthyBaseline.from_bytes(baseline.to_bytes())

    np.testing.assert_array_equal(restored.multivariate_z(frame), baseline.multivariate_z(frame))
    with pytest.raises(ModelFormatError):
        HealthyBaseline.from_bytes(b"not a model at all")
