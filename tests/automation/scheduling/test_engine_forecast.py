"""Price forecasts from history (``engine.forecast``): ETS(A,A,N) on a series whose trend the test writes."""

from __future__ import annotations

import random

import pytest

from automation.scheduling.engine.forecast import METHOD, daily_series, forecast_prices, forecastable

SLOPE = 1.5  # the price rises this much a day
NOISE = 1.0  # standard deviation of the day-to-day noise


def rising(days: int = 90, seed: int = 7) -> list[tuple[int, float]]:
    """A daily price history ending the day before the horizon: 100 + SLOPE per day, plus noise."""
    rng = random.Random(seed)
    return [(day, 100 + SLOPE * (day + days) + rng.gauss(0, NOISE)) for day in range(-days, 0)]


def test_the_forecast_follows_the_written_trend_and_brackets_the_truth() -> None:
    """Catches a forecast that ignores the trend (a flat last price), shifts it by a day, or whose interval
    does not hold the price the trend goes on to give."""
    history = rising()
    forecast = forecast_prices("acme", history, days=14)
    assert forecast.method == METHOD and forecast.history_days == 90 and forecast.level == 0.9
    assert len(forecast.mean) == len(forecast.lower) == len(forecast.upper) == 14
    for day in range(14):
        truth = 100 + SLOPE * (day + 90)
        assert forecast.lower[day] < forecast.mean[day] < forecast.upper[day]
        assert forecast.mean[day] == pytest.approx(truth, abs=3 * NOISE)
        assert forecast.lower[day] < truth < forecast.upper[day]
    # the slope is the written one: two weeks ahead it has risen by about 13 * SLOPE, not stayed flat
    assert forecast.mean[13] - forecast.mean[0] == pytest.approx(13 * SLOPE, rel=0.1)
    assert forecast.mean[0] > history[-1][1] - 3 * NOISE
    # uncertainty does not shrink with the distance from the history (equal when the fit smooths hardly at all)
    assert forecast.upper[13] - forecast.lower[13] >= forecast.upper[0] - forecast.lower[0] - 1e-3


def test_a_falling_series_is_forecast_falling_and_never_below_zero() -> None:
    history = [(day, 100 - 2.0 * (day + 30)) for day in range(-30, 0)]  # 100 down to 42: zero on day 20
    forecast = forecast_prices("acme", history, days=30)
    assert forecast.mean[0] == pytest.approx(40, abs=0.5) and forecast.mean[10] == pytest.approx(20, abs=0.5)
    assert forecast.mean[25] == 0.0 and all(v >= 0 for v in forecast.mean + forecast.lower + forecast.upper)


def test_sparse_quotes_become_a_daily_step_series_and_short_histories_are_not_forecast() -> None:
    """Catches a weekly quote read as one day's price, and forecasts made from two points."""
    quotes = [(-21, 10.0), (-14, 11.0), (-7, 12.0)]
    assert daily_series(quotes) == [10.0] * 7 + [11.0] * 7 + [12.0] * 7
    assert forecastable(quotes)
    assert not forecastable(quotes[1:])  # two points
    assert not forecastable([(-5, 1.0), (-3, 1.0), (-1, 1.0)])  # five days of history
    assert not forecastable([*quotes, (0, 12.0)])  # a price inside the horizon: no forecast needed
    flat = forecast_prices("acme", [(-30, 5.0), (-20, 5.0), (-10, 5.0)], days=3)
    assert flat.mean == flat.lower == flat.upper == (5.0, 5.0, 5.0)
