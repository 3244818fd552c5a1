"""Writes the maintenance sample files in this folder (the scheduling ones are written by hand). Deterministic:
the synthetic fleet of tests.automation.maintenance (seeded), so a recommendation is known to come out.

    .venv/bin/python -m tests.portal.data.make_samples
"""

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from automation.maintenance.engine.synthetic import AnomalySpec, generate_fleet

HERE = Path(__file__).resolve().parent / "maintenance"
CHANNELS = [  # name, unit, minimum, maximum, component: as tests.automation.maintenance.maintenance_api.CHANNELS
    ("vibration", "mm/s", -5, 10, "spindle bearing"),
    ("temperature", "degC", -20, 200, ""),
    ("pressure", "bar", 0, 20, ""),
    ("current", "A", 0, 100, ""),
    ("flow", "l/min", 0, 200, ""),
    ("humidity", "%", 0, 100, ""),
]
NAMES = [c[0] for c in CHANNELS]
LIVE_START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday, in the past; one reading per hour (the type's cycle)


def main() -> None:
    fleet = generate_fleet(
        n_assets=4,
        seed=5,
        min_life=60,
        max_life=70,
        min_degradation=20,
        max_degradation=30,
        anomalies=[AnomalySpec(asset_index=3, channel="humidity", start=20, duration=8, magnitude=12.0)],
    )
    HERE.mkdir(exist_ok=True)
    (HERE / "channels.txt").write_text(
        "".join(", ".join(str(v) for v in channel).rstrip(", ") + "\n" for channel in CHANNELS)
    )

    history = io.StringIO()
    history.write(",".join(["asset", "cycle", *NAMES]) + "\n")
    for number, (_, frame) in enumerate(fleet.histories[:3], start=1):
        for cycle, (_, row) in enumerate(frame.iterrows(), start=1):
            history.write(",".join([f"pump-{number}", str(cycle), *(f"{row[n]:.4f}" for n in NAMES)]) + "\n")
    (HERE / "pump_history.csv").write_text(history.getvalue())

    # The fourth pump is still running, two cycles before it would fail: scoring recommends replacing it.
    live = io.StringIO()
    live.write(",".join(["asset", "ts", *NAMES]) + "\n")
    frame = fleet.histories[3][1]
    for i in range(len(frame) - 2):
        ts = (LIVE_START + timedelta(hours=i)).isoformat().replace("+00:00", "Z")
        live.write(",".join(["pump-live", ts, *(f"{frame.iloc[i][n]:.4f}" for n in NAMES)]) + "\n")
    (HERE / "pump_live.csv").write_text(live.getvalue())


if __name__ == "__main__":
    main()
