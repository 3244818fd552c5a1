"""Health score and recommendations from RUL predictions and anomalies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from automation.maintenance.engine.anomaly import MULTIVARIATE, Anomaly
from automation.maintenance.engine.health import health_score, recommend, resolve_component
from automation.maintenance.engine.rul import Driver, RulPrediction

NOW = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
CYCLE = timedelta(hours=1)


def _prediction(rul: float, low: float, high: float, drivers=()) -> RulPrediction:
    return RulPrediction(rul=rul, low=low, high=high, drivers=tuple(drivers), cap=125.0)


def _anomaly(channel: str, score: float, ongoing: bool = True) -> Anomaly:
    return Anomaly(channel=channel, start=10, end=20, score=score, ongoing=ongoing)


def test_health_score_falls_with_remaining_life() -> None:
    scores = [health_score(prediction=_prediction(r, r, r)) for r in (125, 100, 60, 20, 0)]
    assert scores[0] == 100.0
    assert scores[-1] == 0.0
    assert scores == sorted(scores, reverse=True)
    assert health_score(prediction=_prediction(500, 400, 600)) == 100.0


def test_only_ongoing_anomalies_lower_health() -> None:
    prediction = _prediction(125, 110, 125)
    clean = health_score(prediction=prediction)
    past = health_score(prediction=prediction, anomalies=[_anomaly("vibration", 9.0, ongoing=False)])
    current = health_score(prediction=prediction, anomalies=[_anomaly("vibration", 9.0)])
    severe = health_score(prediction=prediction, anomalies=[_anomaly("vibration", 20.0), _anomaly(MULTIVARIATE, 20.0)])

    assert clean == past == 100.0
    assert severe < current < clean
    # Anomalies alone never zero the score: the RUL model still says healthy.
    assert severe >= 40.0
    # Without a trained model the score is driven by anomalies only.
    assert health_score(prediction=None, anomalies=[_anomaly("flow", 9.0)]) < 100.0


def test_replace_when_conservative_rul_is_inside_the_lead_time() -> None:
    prediction = _prediction(14, 8, 22, [Driver("bearing_vibration_rms", 30.0)])

    advice = recommend(prediction=prediction, now=NOW, cycle_duration=CYCLE, replace_within=20)

    assert advice.action == "replace"
    assert advice.component == "bearing"
    assert advice.channel == "bearing_vibration_rms"
    assert advice.priority == "urgent"
    assert advice.due_by == NOW + 8 * CYCLE  # the low end of the band, not the point estimate
    assert "bearing_vibration_rms" in advice.reason and "14" in advice.reason


def test_inspect_early_enough_to_schedule_a_replacement() -> None:
    prediction = _prediction(70, 50, 95, [Driver("Temperature", 12.0)])

    advice = recommend(prediction=prediction, now=NOW, cycle_duration=CYCLE, replace_within=20, inspect_within=60)

    assert advice.action == "inspect"
    assert advice.component == "cooling system"
    assert advice.priority == "medium"
    assert advice.due_by == NOW + (50 - 20) * CYCLE


def test_healthy_asset_gets_a_low_priority_inspection() -> None:
    advice = recommend(prediction=_prediction(125, 110, 125), now=NOW, cycle_duration=CYCLE)

    assert advice.action == "inspect"
    assert advice.priority == "low"
    assert advice.component == "asset"
    assert "or more" in advice.reason


def test_ongoing_anomaly_brings_the_inspection_forward() -> None:
    prediction = _prediction(125, 110, 125)
    anomalies = [_anomaly("pump_flow", 8.0), _anomaly("oil_temp", 5.0, ongoing=False)]

    advice = recommend(prediction=prediction, now=NOW, cycle_duration=CYCLE, anomalies=anomalies, replace_within=20)

    assert advice.action == "inspect"
    assert advice.component == "pump"
    assert advice.priority == "medium"
    assert advice.due_by == NOW + 20 * CYCLE
    assert "pump_flow" in advice.reason and "oil_temp" not in advice.reason


def test_tenant_component_mapping_wins_over_defaults() -> None:
    components = {"vibration": "gearbox", "Spindle_Load": "spindle"}
    assert resolve_component(channel="vibration", components=components) == "gearbox"
    assert resolve_component(channel="spindle_load", components=components) == "spindle"
    assert resolve_component(channel="vibration_x") == "bearing"
    assert resolve_component(channel="sensor_11") == "asset"


def test_rejects_inconsistent_thresholds() -> None:
    with pytest.raises(ValueError):
        recommend(
            prediction=_prediction(50, 40, 60), now=NOW, cycle_duration=CYCLE, replace_within=30, inspect_within=10
        )
    with pytest.raises(ValueError):
        recommend(prediction=_prediction(50, 40, 60), now=NOW, cycle_duration=timedelta(0))
