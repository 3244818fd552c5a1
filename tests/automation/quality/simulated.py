"""Simulated lines whose causes the test writes: shared by the engine and the API tests."""

import numpy as np

from automation.quality.engine import LineModel, UnitRecord

STATIONS = ("turn", "mill", "inspect")
VARIABLES = {"spindle_speed": "turn", "diameter": "turn", "feed": "mill", "flatness": "mill"}
LINE = LineModel(stations=STATIONS, variable_station=VARIABLES)


def simulate(*, scenario: str, n: int = 600, seed: int = 7) -> list[UnitRecord]:
    """`healthy`; `drift` (diameter drifts upward on turn/T2 after unit n/2, oversize diameter fails);
    `lot` (lot L042 of two alternating steel lots fails often); `propagation` (spindle_speed at turn shifts
    after n/2, flatness at mill follows it, and high flatness fails: the upstream spindle_speed is the cause)."""
    rng = np.random.default_rng(seed)
    units = []
    for i in range(n):
        machine_turn = "T1" if i % 2 == 0 else "T2"
        machine_mill = "M1" if (i // 3) % 2 == 0 else "M2"
        lot = "L041" if (i // 25) % 2 == 0 else "L042"
        speed = rng.normal(1200.0, 10.0)
        diameter = rng.normal(50.0, 0.01)
        feed = rng.normal(0.2, 0.005)
        late = i >= n // 2
        if scenario == "drift" and late and machine_turn == "T2":
            diameter += 0.00015 * (i - n // 2)
        if scenario == "propagation" and late:
            speed += 35.0
        flatness = 0.02 + 0.0004 * (speed - 1200.0) + rng.normal(0.0, 0.002)
        p_fail = 0.01
        if scenario == "drift":
            p_fail = 0.9 if diameter > 50.03 else 0.01
        elif scenario == "lot":
            p_fail = 0.35 if lot == "L042" else 0.01
        elif scenario == "propagation":
            p_fail = 0.8 if flatness > 0.031 else 0.01
        units.append(
            UnitRecord(
                unit=f"U{i:05d}",
                time=float(i * 60),
                defective=bool(rng.random() < p_fail),
                machines={"turn": machine_turn, "mill": machine_mill, "inspect": "Q1"},
                lots=(lot,),
                values={"spindle_speed": speed, "diameter": diameter, "feed": feed, "flatness": flatness},
            )
        )
    return units
