"""RUL model on held-out synthetic assets with known failure times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from automation.maintenance.engine.anomaly import fit_healthy_baseline
from automation.maintenance.engine.health import recommend
from automation.maintenance.engine.rul import RulConfig, RulModel, train_rul_model
from automation.maintenance.engine.serialization import ModelFormatError
from automation.maintenance.engine.synthetic import generate_fleet

CAP = 125.0
NOISE_ONLY = {"flow", "humidity"}


@pytest.fixture(scope="module")
def fleet():
    # Load is measured (a "load" setting column), as line speed or throughput
    # would be in a plant: the model compensates channels for it.
    return generate_fleet(n_assets=32, seed=7, observed_load=True)


@pytest.fixture(scope="module")
def split(fleet):
    return fleet.histories[:24], fleet.histories[24:]


@pytest.fixture(scope="module")
def model(fleet, split) -> RulModel:
    train, _ = split
    return train_rul_model(histories=train, cap=CAP, setting_columns=fleet.setting_columns)


@pytest.fixture(scope="module")
def held_out_trajectories(model, split):
    """(capped truth, prediction, low, high) for every row of every held-out asset."""
    _, test = split
    truth, predicted, low, high = [], [], [], []
    for _, frame in test:
        trajectory = model.predict_trajectory(frame)
        truth.append(np.minimum(np.arange(len(frame) - 1, -1, -1, dtype=float), CAP))
        predicted.append(trajectory["rul"].to_numpy())
        low.append(trajectory["low"].to_numpy())
        high.append(trajectory["high"].to_numpy())
    return tuple(np.concatenate(x) for x in (truth, predicted, low, high))


def test_error_shrinks_as_failure_approaches(held_out_trajectories) -> None:
    truth, predicted, _, _ = held_out_trajectories

    def rmse(mask):
        return float(np.sqrt(np.mean((predicted[mask] - truth[mask]) ** 2)))

    near = rmse(truth <= 20)
    mid = rmse((truth > 40) & (truth <= 80))
    far = rmse((truth > 80) & (truth < CAP))
    assert near < 8.0
    assert near < 0.6 * mid
    assert near < far
    # And it is a real model: far better than always predicting the mean.
    assert rmse(truth >= 0) < 0.6 * float(np.std(truth))


def test_band_contains_the_truth_most_of_the_time(model, held_out_trajectories) -> None:
    truth, predicted, low, high = held_out_trajectories

    inside = (truth >= low) & (truth <= high)
    assert np.all(low <= predicted) and np.all(predicted <= high)
    # Nominal 80 % (10 %-90 % residual quantiles); held-out assets.
    assert inside.mean() > 0.7
    # Not trivially wide: near failure the band is tight.
    near = truth <= 20
    assert np.median(high[near] - low[near]) < 30
    assert 0.7 < model.summary.band_coverage < 0.9


def test_predictions_at_points_in_time(model, split) -> None:
    _, test = split
    for _, frame in test:
        early = model.predict(frame.iloc[:30])
        late = model.predict(frame.iloc[: len(frame) - 10])
        assert late.rul < early.rul
        assert abs(late.rul - 10) < 10
        assert late.low <= 10 + 5
        assert late.as_of == frame.index[len(frame) - 11]
    # Early in life, with no wear visible, the model says "healthy, at cap".
    long_lived = [frame for _, frame in test if len(frame) > 250]
    assert long_lived
    assert all(model.predict(frame.iloc[:60], explain=False).rul > 100 for frame in long_lived)


def test_serialisation_round_trip_gives_identical_predictions(model, split) -> None:
    _, test = split
    frames = {asset_id: frame.iloc[: len(frame) - 25] for asset_id, frame in test}

    restored = RulModel.from_bytes(model.to_bytes())

    assert restored.predict_many(frames) == model.predict_many(frames)
    np.testing.assert_array_equal(
        restored.predict_trajectory(test[0][1]).to_numpy(), model.predict_trajectory(test[0][1]).to_numpy()
    )
    assert restored.summary == model.summary


def test_from_bytes_rejects_other_artifacts(fleet) -> None:
    baseline = fit_healthy_baseline(frames=[fleet.histories[0][1].iloc[:50]], channels=["vibration", "flow"])
    with pytest.raises(ModelFormatError, match="healthy-baseline"):
        RulModel.from_bytes(baseline.to_bytes())


def test_drivers_name_the_degrading_channels(model, fleet, split) -> None:
    _, test = split
    degrading = set(fleet.truth[test[0][0]].degrading_channels)
    assert degrading == {"vibration", "temperature", "pressure"}

    top_drivers = []
    for _, frame in test:
        prediction = model.predict(frame.iloc[: len(frame) - 15])
        assert prediction.drivers, "an asset 15 cycles from failure must have drivers"
        top_drivers.append(prediction.drivers[0].channel)
        assert all(d.effect > 0 for d in prediction.drivers)
        assert not NOISE_ONLY & {d.channel for d in prediction.drivers}
    assert set(top_drivers) <= degrading

    # Globally too: the channels the model reads wear from are the degrading ones.
    assert set(list(model.channel_importance)[:3]) == degrading
    # The measured load is a setting, compensated for, not a channel.
    assert "load" not in model.channels and model.setting_columns == ("load",)


def test_recommendation_end_to_end(model, split) -> None:
    _, test = split
    frame = test[0][1]
    prediction = model.predict(frame.iloc[: len(frame) - 5])
    now = datetime(2024, 1, 1, tzinfo=UTC)

    advice = recommend(prediction=prediction, now=now, cycle_duration=timedelta(hours=8))

    assert advice.action == "replace"
    assert advice.priority in {"urgent", "high"}
    assert advice.component in {"bearing", "cooling system", "seal"}
    assert now <= advice.due_by <= now + timedelta(hours=8) * prediction.rul


def test_training_is_deterministic(fleet, split) -> None:
    train, test = split
    config = RulConfig(n_models=2, max_iter=40, oof_folds=2)
    first = train_rul_model(histories=train[:10], setting_columns=fleet.setting_columns, config=config)
    second = train_rul_model(histories=train[:10], setting_columns=fleet.setting_columns, config=config)
    frame = test[0][1]
    assert first.predict(frame) == second.predict(frame)


def test_rejects_unusable_histories(fleet) -> None:
    with pytest.raises(ValueError, match="at least 2 assets"):
        train_rul_model(histories=fleet.histories[:1])
    duplicated = [fleet.histories[0], fleet.histories[0]]
    with pytest.raises(ValueError, match="unique"):
        train_rul_model(histories=duplicated)
