"""Price forecasts for suppliers that give only price history.

A supplier whose dated prices all lie before the horizon says what the material cost, not what it will cost.
Its history becomes a daily series (a price holds from its date until the next one, as in ``costs.py``), and
an exponential-smoothing state-space model with an additive trend and additive errors, ETS(A,A,N) (Holt's
linear trend; statsmodels' ``ETSModel``, fitted by maximum likelihood), forecasts each day of the horizon
with its prediction interval (90 % unless asked otherwise, from the model's closed-form forecast variance).
The forecast mean is the expected price the plan is made with; the interval is what robust plans sample.

Too short a history (fewer than ``MIN_POINTS`` dated prices or ``MIN_HISTORY_DAYS`` days) is not forecast:
its last price holds, as before. A fit that fails keeps the last price too, and says so in ``method``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

METHOD = "ETS(A,A,N) (Holt's linear trend, additive errors), statsmodels ETSModel, maximum likelihood"
MIN_POINTS = 3
MIN_HISTORY_DAYS = 14
LEVEL = 0.9


@dataclass(frozen=True)
class PriceForecast:
    """The expected price and its prediction interval on each day of the horizon (day 0 first)."""

    supplier: str
    method: str
    history_days: int  # length of the daily series the model was fitted on
    level: float  # coverage of the interval
    mean: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]


def forecastable(history: Sequence[tuple[int, float]]) -> bool:
    """Whether ``history`` ((day, price), days before the horizon negative) is long enough to forecast."""
    if len(history) < MIN_POINTS or any(day >= 0 for day, _ in history):
        return False
    return -min(day for day, _ in history) >= MIN_HISTORY_DAYS


def daily_series(history: Sequence[tuple[int, float]]) -> list[float]:
    """The price on each day from the first dated price to day -1 (the day before the horizon)."""
    points = sorted(history)
    series = []
    current = points[0][1]
    index = 0
    for day in range(points[0][0], 0):
        while index < len(points) and points[index][0] <= day:
            current = points[index][1]
            index += 1
        series.append(current)
    return series


def forecast_prices(
    supplier: str, history: Sequence[tuple[int, float]], *, days: int, level: float = LEVEL
) -> PriceForecast:
    """Forecast days 0 .. ``days - 1``; ``history`` must be ``forecastable``. Prices are kept at zero or above."""
    series = daily_series(history)
    try:
        mean, lower, upper = _ets(series, days=days, level=level)
        method = METHOD
    except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:  # a degenerate series: keep the last price
        last = series[-1]
        mean, lower, upper = [last] * days, [last] * days, [last] * days
        method = f"last price (the ETS fit failed: {exc})"
    return PriceForecast(
        supplier=supplier,
        method=method,
        history_days=len(series),
        level=level,
        mean=tuple(round(max(0.0, v), 4) for v in mean),
        lower=tuple(round(max(0.0, v), 4) for v in lower),
        upper=tuple(round(max(0.0, v), 4) for v in upper),
    )


def _ets(series: Sequence[float], *, days: int, level: float) -> tuple[list[float], list[float], list[float]]:
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    values = np.asarray(series, dtype=float)
    if float(values.max() - values.min()) < 1e-9:  # a flat history: the model has nothing to fit
        flat = [float(values[-1])] * days
        return flat, list(flat), list(flat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the fit is used as it comes
        fitted = ETSModel(pd.Series(values), error="add", trend="add", damped_trend=False).fit(disp=False)
        frame = fitted.get_prediction(start=len(values), end=len(values) + days - 1).summary_frame(alpha=1 - level)
    mean = [float(v) for v in frame["mean"]]
    lower = [float(v) for v in frame["pi_lower"]]
    upper = [float(v) for v in frame["pi_upper"]]
    if not all(math.isfinite(v) for v in mean + lower + upper):
        raise ValueError("the fitted model forecasts values that are not finite")
    return mean, lower, upper
