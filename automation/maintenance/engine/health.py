"""Health score and maintenance recommendation from RUL and anomalies.

Health score (0-100): the predicted RUL as a share of the healthy horizon
(the model's cap), reduced by ongoing anomalies. RUL dominates because it is
the calibrated, learned signal; anomalies lower the score because they are
evidence the model may not have seen (a fault type absent from training), but
cannot drive it to zero on their own. Past, finished anomalies do not count:
they are history, not the asset's current state.

Recommendation: the action is planned against the conservative RUL (the low
end of the band, 10 % quantile by default), converted to a date with the
asset's cycle duration. Replace when even that leaves little margin, inspect
otherwise, on the component that the top driver channel (or the strongest
ongoing anomaly) maps to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from automation.maintenance.engine.anomaly import Anomaly
from automation.maintenance.engine.rul import RulPrediction

# Keyword (matched inside the lower-cased channel name) -> component, in
# priority order. Tenants override per asset type with ``components``.
DEFAULT_COMPONENT_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("vibration", "bearing"),
    ("vib", "bearing"),
    ("acoustic", "bearing"),
    ("temperature", "cooling system"),
    ("temp", "cooling system"),
    ("pressure", "seal"),
    ("current", "motor"),
    ("power", "motor"),
    ("voltage", "electrical supply"),
    ("flow", "pump"),
    ("oil", "lubrication system"),
    ("rpm", "drive train"),
    ("speed", "drive train"),
    ("humidity", "enclosure"),
)
UNMAPPED_COMPONENT = "asset"

Action = Literal["inspect", "replace"]
Priority = Literal["low", "medium", "high", "urgent"]


@dataclass(frozen=True)
class Recommendation:
    action: Action
    component: str
    channel: str | None  # channel the component was derived from, if any
    due_by: datetime
    priority: Priority
    conservative_rul: float  # cycles; the value due_by is planned against
    reason: str


def _ongoing(anomalies: Sequence[Anomaly]) -> list[Anomaly]:
    return [a for a in anomalies if a.ongoing]


def health_score(
    *,
    prediction: RulPrediction | None,
    anomalies: Sequence[Anomaly] = (),
    horizon: float | None = None,
    channel_anomaly_weight: float = 0.25,
    multivariate_anomaly_weight: float = 0.35,
    max_anomaly_penalty: float = 0.6,
) -> float:
    """0 (failing now) to 100 (healthy); ``prediction=None`` means no RUL model yet."""
    if prediction is not None:
        horizon = horizon or prediction.cap
        if horizon <= 0:
            raise ValueError("horizon must be positive")
        rul_part = 100.0 * min(max(prediction.rul, 0.0), horizon) / horizon
    else:
        rul_part = 100.0
    # Each ongoing anomaly removes a share that grows with how far past the
    # alarm level (z = 4) it is, saturating at its weight (z >= 14).
    remaining = 1.0
    for anomaly in _ongoing(anomalies):
        weight = multivariate_anomaly_weight if anomaly.is_multivariate else channel_anomaly_weight
        severity = min(1.0, max(0.0, (anomaly.score - 4.0) / 10.0) + 0.3)
        remaining *= 1.0 - weight * severity
    penalty = min(max_anomaly_penalty, 1.0 - remaining)
    return round(rul_part * (1.0 - penalty), 1)


def resolve_component(*, channel: str, components: Mapping[str, str] | None = None) -> str:
    """Component for a channel: tenant mapping first, then default keywords."""
    if components:
        if channel in components:
            return components[channel]
        lowered = {key.lower(): value for key, value in components.items()}
        if channel.lower() in lowered:
            return lowered[channel.lower()]
    name = channel.lower()
    for keyword, component in DEFAULT_COMPONENT_KEYWORDS:
        if keyword in name:
            return component
    return UNMAPPED_COMPONENT


def recommend(
    *,
    prediction: RulPrediction,
    now: datetime,
    cycle_duration: timedelta,
    anomalies: Sequence[Anomaly] = (),
    components: Mapping[str, str] | None = None,
    replace_within: float = 20.0,
    inspect_within: float = 60.0,
) -> Recommendation:
    """Inspect or replace which component, by when, how urgently, and why.

    ``replace_within`` (cycles) is the lead time a replacement needs: if the
    conservative RUL is at or below it, replace now-ish; otherwise inspect
    early enough that a replacement can still be scheduled in time.
    ``inspect_within`` marks when an inspection becomes a medium priority.
    """
    if replace_within <= 0 or inspect_within < replace_within:
        raise ValueError("need 0 < replace_within <= inspect_within")
    if cycle_duration <= timedelta(0):
        raise ValueError("cycle_duration must be positive")
    conservative = max(0.0, min(prediction.low, prediction.rul))
    ongoing = sorted(_ongoing(anomalies), key=lambda a: -a.score)

    channel: str | None = None
    if prediction.drivers:
        channel = prediction.drivers[0].channel
    else:
        channel_anomalies = [a for a in ongoing if not a.is_multivariate]
        if channel_anomalies:
            channel = channel_anomalies[0].channel
    component = resolve_component(channel=channel, components=components) if channel else UNMAPPED_COMPONENT

    if conservative <= replace_within:
        action: Action = "replace"
        due_cycles = conservative
        priority: Priority = "urgent" if conservative <= replace_within / 2 else "high"
    else:
        action = "inspect"
        due_cycles = conservative - replace_within
        priority = "medium" if conservative <= inspect_within else "low"
        if ongoing:
            # Something is off right now that the RUL model may not know:
            # look at it within the replacement lead time, not at end of life.
            due_cycles = min(due_cycles, replace_within)
            priority = "high" if any(a.is_multivariate for a in ongoing) or priority == "medium" else "medium"

    parts = [
        f"predicted RUL {prediction.rul:.0f} cycles"
        + (" or more" if prediction.at_cap else "")
        + f" (band {prediction.low:.0f}-{prediction.high:.0f})"
    ]
    if prediction.drivers:
        drivers = ", ".join(f"{d.channel} (-{d.effect:.0f})" for d in prediction.drivers)
        parts.append(f"driven by {drivers}")
    if ongoing:
        parts.append("ongoing anomaly on " + ", ".join(sorted({a.channel for a in ongoing})))
    return Recommendation(
        action=action,
        component=component,
        channel=channel,
        due_by=now + cycle_duration * due_cycles,
        priority=priority,
        conservative_rul=conservative,
        reason="; ".join(parts),
    )
