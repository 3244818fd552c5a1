"""What a schedule turns into for people: KPIs, a CSV file and a Gantt chart."""

from __future__ import annotations

import io

import matplotlib.image

from automation.scheduling.engine import (
    Assignment,
    Machine,
    Operation,
    Option,
    Order,
    Problem,
    Product,
    compute_kpis,
    gantt_png,
    schedule_csv,
)


def two_orders() -> tuple[Problem, tuple[Assignment, ...]]:
    """MILL works 0-50 and 60-100; A is due at 40 and finishes at 45, B has no due date, C is on time."""
    problem = Problem(
        machines=(Machine("MILL", calendar=((0, 50), (60, 100))), Machine("LATHE")),
        products=(Product("p", (Operation((Option("MILL", 1), Option("LATHE", 1))),)),),
        orders=(
            Order("A", "p", quantity=30, due=40, weight=3),
            Order("B", "p", quantity=40),
            Order("C", "p", quantity=20, due=90),
        ),
    )
    schedule = (
        Assignment("A", 0, "MILL", 15, 45, setup=5),
        Assignment("B", 0, "MILL", 60, 100),
        Assignment("C", 0, "LATHE", 0, 20),
    )
    return problem, schedule


def test_kpis_of_a_hand_computed_schedule() -> None:
    """Utilisation counts setups as busy and only working time as available; on-time rate ignores undated orders."""
    problem, schedule = two_orders()
    kpis = compute_kpis(problem, schedule)
    assert kpis.makespan == 100
    assert kpis.tardiness == {"A": 5, "C": 0}
    assert kpis.weighted_tardiness == 15
    assert kpis.on_time_rate == 0.5
    assert kpis.utilisation == {"MILL": (35 + 40) / 90, "LATHE": 20 / 100}


def test_csv_has_one_row_per_operation_ordered_by_machine_then_start() -> None:
    """Catches a header or column order change, which would break the download the planners import."""
    _, schedule = two_orders()
    assert schedule_csv(schedule).splitlines() == [
        "machine,order,operation,start,end,setup",
        "LATHE,C,0,0,20,0",
        "MILL,A,0,15,45,5",
        "MILL,B,0,60,100,0",
    ]


def test_gantt_is_a_png_with_a_drawn_chart() -> None:
    """Catches a blank or broken image, e.g. from a backend that needs a display."""
    problem, schedule = two_orders()
    png = gantt_png(problem, schedule, title="Monday")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = matplotlib.image.imread(io.BytesIO(png))
    height, width, _ = pixels.shape
    assert width >= 400 and height >= 100
    assert len({tuple(p) for p in pixels.reshape(-1, pixels.shape[2])[::7]}) > 10  # colours, not a blank canvas
