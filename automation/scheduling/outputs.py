"""A run's schedule for people: per machine with real datetimes, as CSV, as a Gantt chart; and its KPIs.

The engine works in minutes from the run's horizon start; everything here turns them back into datetimes
(UTC, ISO 8601) and keeps the minutes alongside for tools that want numbers.
"""

import csv
import io
from datetime import timedelta

from .engine import Purchase, gantt_png
from .engine.scenarios import Plan, compare_plans
from .models import Run
from .snapshot import problem_from_json, schedule_from_json

CSV_COLUMNS = [
    "machine",
    "order",
    "operation",
    "operation_name",
    "start",
    "end",
    "setup_minutes",
    "start_minute",
    "end_minute",
]


def moment(run: Run, minute: int) -> str:
    return (run.horizon_start + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")


def _product_of(run: Run) -> dict[str, str]:
    return {order["id"]: order["product"] for order in run.problem["orders"]}


def schedule_rows(run: Run) -> list[dict]:
    """One row per operation, ordered by machine then start."""
    products = _product_of(run)
    rows = []
    for order, index, machine, start, end, setup in sorted(run.schedule or [], key=lambda r: (r[2], r[3])):
        names = run.operation_names.get(products.get(order, ""), [])
        rows.append(
            {
                "machine": machine,
                "order": order,
                "operation": index,
                "operation_name": names[index] if index < len(names) else "",
                "start": moment(run, start),
                "end": moment(run, end),
                "setup_minutes": setup,
                "start_minute": start,
                "end_minute": end,
            }
        )
    return rows


def schedule_by_machine(run: Run) -> list[dict]:
    machines: dict[str, list[dict]] = {m["id"]: [] for m in run.problem["machines"]}
    for row in schedule_rows(run):
        machines.setdefault(row["machine"], []).append({k: v for k, v in row.items() if k != "machine"})
    return [{"machine": machine, "operations": operations} for machine, operations in machines.items()]


def schedule_csv(run: Run) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(schedule_rows(run))
    return buffer.getvalue()


def schedule_png(run: Run) -> bytes:
    title = f"Run {run.id} ({run.objective}): minute 0 = {run.horizon_start:%Y-%m-%d %H:%M} UTC"
    return gantt_png(problem_from_json(run.problem), schedule_from_json(run.schedule or []), title=title)


def kpis_json(run: Run) -> dict | None:
    """The engine's KPIs, with units in the names and the end of the schedule as a datetime."""
    if run.kpis is None:
        return None
    kpis = run.kpis
    return {
        "makespan_minutes": kpis["makespan"],
        "finishes_at": moment(run, kpis["makespan"]),
        "tardiness_minutes": kpis["tardiness"],
        "weighted_tardiness": kpis["weighted_tardiness"],
        "on_time_rate": kpis["on_time_rate"],
        "utilisation": kpis["utilisation"],
    }


PURCHASE_COLUMNS = [
    "supplier",
    "material",
    "quantity",
    "order_on",
    "arrives_on",
    "order_day",
    "arrival_day",
    "unit_price",
    "cost",
]


def purchase_rows(run: Run) -> list[dict]:
    """The purchase orders of a cost run, by order date, with the days as datetimes (UTC)."""
    rows = []
    for p in sorted(run.purchases or [], key=lambda p: (p["order_day"], p["material"], p["supplier"])):
        rows.append(
            {
                "supplier": p["supplier"],
                "material": p["material"],
                "quantity": p["quantity"],
                "order_on": moment(run, p["order_day"] * 1440),
                "arrives_on": moment(run, p["arrival_day"] * 1440),
                "order_day": p["order_day"],
                "arrival_day": p["arrival_day"],
                "unit_price": p["unit_price"],
                "cost": round(p["cost"], 2),
            }
        )
    return rows


def purchases_csv(run: Run) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=PURCHASE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(purchase_rows(run))
    return buffer.getvalue()


def forecast_rows(run: Run) -> list[dict]:
    """The run's price forecasts, per supplier, with each horizon day as a datetime (UTC)."""
    return [
        {
            "supplier": f["supplier"],
            "material": f["material"],
            "method": f["method"],
            "level": f["level"],
            "history_days": f["history_days"],
            "days": [
                {"day": day, "date": moment(run, day * 1440), "price": mean, "lower": lower, "upper": upper}
                for day, (mean, lower, upper) in enumerate(zip(f["mean"], f["lower"], f["upper"], strict=True))
            ],
        }
        for f in run.forecasts or []
    ]


def comparison(run: Run) -> dict:
    """A what-if (or re-planned) cost run beside its parent: ``engine.scenarios.compare_plans`` with the
    minutes of the orders' starts and ends also as datetimes (UTC)."""
    parent = run.parent
    assert parent is not None and parent.schedule is not None and run.schedule is not None
    compared = compare_plans(
        Plan(
            problem_from_json(parent.problem),
            schedule_from_json(parent.schedule),
            tuple(Purchase(**p) for p in parent.purchases),
        ),
        Plan(
            problem_from_json(run.problem),
            schedule_from_json(run.schedule),
            tuple(Purchase(**p) for p in run.purchases),
        ),
    )
    for row in compared["orders"]:
        for name in ("base_start", "base_end", "start", "end", "due"):
            row[f"{name}_at"] = None if row[name] is None else moment(run, row[name])
    return {"base_run": str(parent.id), "changes": run.changes, **compared}
