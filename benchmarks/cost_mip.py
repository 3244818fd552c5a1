"""An independent MIP peer for the cost benchmark's small instances: a time-indexed MILP solved by HiGHS.

Written from the rules in ``automation/scheduling/engine/costs.py`` (not from the CP-SAT model in
``costmodel.py``), for the instances ``scheduling_cost.generate`` makes: whole-hour operations, machines that
work around the clock, no changeovers, calendars, storage limits or frozen work (``solve_mip`` refuses others).

Variables and constraints (T = hours in the horizon):
- ``x[o,i,m,t]`` binary: operation i of order o starts on machine m at hour t (t at or after the release, ending
  by T); ``a[o]`` binary: order o is made (fixed to 1 unless optional); each operation of a made order starts
  exactly once, none of a declined one.
- machine capacity per hour: the operations running on m in hour h sum to at most 1;
- routing: operation i+1 starts at or after operation i ends (start and end as sums of t x);
- late days ``L[o]`` integer >= (end of the last operation - due) / 1 day: the penalty counts each day or part;
- purchases per supplier and order day (arrival by the last day), one per price tier at most: binary ``y`` and
  integer ``q`` with the tier's minimum (the MOQ first) <= q <= the next tier's minimum - 1, priced at the dated
  price times the tier's factor, rounded to thousandths like ``Supplier.unit_millis``;
- stock per material at the end of each day d: stock + arrivals by d - consumption of operations starting by
  the end of d >= 0 (arrivals come at day starts and consumption at operation starts, so this is every moment);
  holding is the rate times the sum of those end-of-day levels.
Objective: purchases + holding + energy above idle (each start's hours priced by the tariff) + overtime + late
penalties + margins of declined orders. The idle draw over working time is a constant, added back by pricing
the MILP's plan with the independent ``evaluate_plan``.

HiGHS runs in a child process that imports no OR-Tools: both wheels ship a ``libhighs.so.1`` of their own
(OR-Tools 9.12's and HiGHS 1.15's), and whichever is loaded second fails to link against the first. The parent
sends the problem as JSON (``dataclasses.asdict``), the child answers the plan, and the parent checks it with
``check_plan`` and prices it with ``evaluate_plan``; the child re-implements the few rules it needs (durations,
consumption, tiers, the dated price) from ``costs.py`` and ``problem.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DAY = 1440


@dataclass(frozen=True)
class MipResult:
    status: str  # "optimal", or HiGHS' model status when it did not prove optimality
    total: float | None  # the plan priced by evaluate_plan
    bound: float | None  # HiGHS' dual bound plus the idle constant (the same money as total)
    seconds: float
    violations: tuple[str, ...] = ()


def solve_mip(problem: Any, *, time_limit_s: float = 600.0) -> MipResult:
    """Solve ``problem`` (an engine ``Problem``) in a child process; check and price its plan here."""
    from automation.scheduling.engine import Assignment, Purchase, check_plan, evaluate_plan

    started = time.monotonic()
    request = json.dumps({"problem": dataclasses.asdict(problem), "time_limit_s": time_limit_s})
    child = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())],
        input=request,
        capture_output=True,
        text=True,
        check=True,
        timeout=time_limit_s + 600,
    )
    answer = json.loads(child.stdout)
    seconds = time.monotonic() - started
    if answer["schedule"] is None:
        return MipResult(answer["status"], None, None, seconds)
    schedule = [Assignment(*row) for row in answer["schedule"]]
    purchases = [Purchase(**p) for p in answer["purchases"]]
    priced = evaluate_plan(problem, schedule, purchases)
    idle = priced.total - answer["objective"]  # the idle draw over working time, a constant
    return MipResult(
        answer["status"],
        priced.total,
        answer["bound"] + idle,
        seconds,
        tuple(check_plan(problem, schedule, purchases)),
    )


# --- the child: the MILP, from plain data -------------------------------------------------------------------------


def _unit_millis(supplier: dict, day: int, quantity: int) -> int:
    points = sorted(supplier["prices"], key=lambda p: p["day"])
    price = points[0]["price"]
    for point in points:
        if point["day"] > day:
            break
        price = point["price"]
    factor = 1.0
    for minimum, tier_factor in _tiers(supplier):
        if quantity >= minimum:
            factor = tier_factor
    return round(price * factor * 1000)


def _tiers(supplier: dict) -> list[tuple[int, float]]:
    lowest = max(1, supplier["moq"])
    tiers = {lowest: 1.0}
    for brk in sorted(supplier["breaks"], key=lambda b: b["min_quantity"]):
        tiers[max(lowest, brk["min_quantity"])] = brk["factor"]
    return sorted(tiers.items())


def build_and_solve(data: dict, time_limit_s: float) -> dict:
    import highspy

    cost = data["cost"]
    assert not data["setups"] and all(m["calendar"] is None and not m["downtime"] for m in data["machines"])
    assert all(m["storage_limit"] is None for m in cost["materials"]) and cost["slot"] == 60
    hours = data["horizon"] // 60
    n_days = math.ceil(data["horizon"] / DAY)
    products = {p["id"]: p for p in data["products"]}
    terms = {t["order"]: t for t in cost["orders"]}
    power = {p["machine"]: p for p in cost["power"]}
    tariff = cost["tariff"]
    bom: dict[tuple[str, int], list[dict]] = {}
    for line in cost["bom"]:
        bom.setdefault((line["product"], line["op_index"]), []).append(line)

    def tariff_at(hour: int) -> float:
        return tariff[hour % len(tariff)] if tariff else 0.0

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-6)
    h.setOptionValue("threads", 1)
    integer = highspy.HighsVarType.kInteger
    objective: list[tuple[Any, float]] = []
    constant = 0.0

    made = {}
    for order in data["orders"]:
        agreed = terms.get(order["id"], {"optional": False, "margin": 0.0})
        made[order["id"]] = h.addVariable(lb=0 if agreed["optional"] else 1, ub=1, type=integer)
        if agreed["optional"] and agreed["margin"]:
            objective.append((made[order["id"]], -agreed["margin"]))  # margin * (1 - a)
            constant += agreed["margin"]

    starts: dict[tuple[str, int], list[tuple[Any, int, str, int]]] = {}
    running: dict[tuple[str, int], list[Any]] = {}
    consumption: dict[str, dict[int, list[tuple[Any, int]]]] = {}
    for order in data["orders"]:
        routing = products[order["product"]]["routing"]
        release_h = math.ceil(order["release"] / 60)
        for i, operation in enumerate(routing):
            key = (order["id"], i)
            units: dict[str, int] = {}
            for line in bom.get((order["product"], i), []):
                units[line["material"]] = units.get(line["material"], 0) + math.ceil(
                    round(line["per_unit"] * order["quantity"], 6)
                )
            starts[key] = []
            for option in operation["options"]:
                minutes = math.ceil(round(option["minutes_per_unit"] * order["quantity"], 6))
                assert minutes % 60 == 0
                d = minutes // 60
                drawn = power.get(option["machine"])
                above_idle = drawn["running_kw"] - drawn["idle_kw"] if drawn else 0.0
                for t0 in range(release_h, hours - d + 1):
                    var = h.addVariable(lb=0, ub=1, type=integer)
                    energy = above_idle * sum(tariff_at(hh) for hh in range(t0, t0 + d))
                    overtime = sum(
                        max(0, min(60 * (t0 + d), ot["end"]) - max(60 * t0, ot["start"])) * ot["cost_per_hour"] / 60
                        for ot in cost["overtime"]
                        if ot["machine"] == option["machine"]
                    )
                    if energy or overtime:
                        objective.append((var, energy + overtime))
                    starts[key].append((var, t0, option["machine"], d))
                    for hh in range(t0, t0 + d):
                        running.setdefault((option["machine"], hh), []).append(var)
                    for material, count in units.items():
                        consumption.setdefault(material, {}).setdefault((60 * t0) // DAY, []).append((var, count))
            h.addConstr(_sum(v for v, *_ in starts[key]) - made[order["id"]] == 0)
    for group in running.values():
        if len(group) > 1:
            h.addConstr(_sum(group) <= 1)
    for order in data["orders"]:
        routing = products[order["product"]]["routing"]
        for i in range(len(routing) - 1):
            end_i = _sum(v * (60 * (t0 + d)) for v, t0, _, d in starts[(order["id"], i)])
            start_next = _sum(v * (60 * t0) for v, t0, _, _ in starts[(order["id"], i + 1)])
            h.addConstr(start_next - end_i >= 0)
        t = terms.get(order["id"])
        if t is not None and t["late_penalty_per_day"] and order["due"] is not None:
            late = h.addVariable(lb=0, ub=n_days + 1, type=integer)
            objective.append((late, t["late_penalty_per_day"]))
            end_last = _sum(v * (60 * (t0 + d)) for v, t0, _, d in starts[(order["id"], len(routing) - 1)])
            h.addConstr(late * DAY - end_last + order["due"] * made[order["id"]] >= 0)  # declined: never late

    purchases = []
    arrivals: dict[str, dict[int, list[Any]]] = {}
    for supplier in cost["suppliers"]:
        demand = sum(c for by_day in consumption.get(supplier["material"], {}).values() for _, c in by_day)
        if demand == 0:
            continue
        tiers = _tiers(supplier)
        for day in range(cost["order_day_from"], n_days - supplier["lead_days"]):
            chosen = []
            for k, (minimum, _factor) in enumerate(tiers):
                upper = tiers[k + 1][0] - 1 if k + 1 < len(tiers) else max(minimum, demand + supplier["moq"])
                if minimum > upper:
                    continue
                y = h.addVariable(lb=0, ub=1, type=integer)
                q = h.addVariable(lb=0, ub=upper, type=integer)
                h.addConstr(q - minimum * y >= 0)
                h.addConstr(q - upper * y <= 0)
                chosen.append(y)
                objective.append((q, _unit_millis(supplier, day, minimum) / 1000))
                purchases.append((supplier, day, q))
                arrivals.setdefault(supplier["material"], {}).setdefault(day + supplier["lead_days"], []).append(q)
            if len(chosen) > 1:
                h.addConstr(_sum(chosen) <= 1)
    for material in cost["materials"]:
        rate = material["holding_per_day"]
        cumulative = None
        for day in range(n_days):
            for q in arrivals.get(material["id"], {}).get(day, []):
                cumulative = q if cumulative is None else cumulative + q
            for v, count in consumption.get(material["id"], {}).get(day, []):
                cumulative = -count * v if cumulative is None else cumulative - count * v
            constant += rate * material["stock"]  # holding: rate * (stock + cumulative) at each day's end
            if cumulative is None:
                continue
            h.addConstr(cumulative >= -material["stock"])
            level = h.addVariable(lb=-math.inf, ub=math.inf)
            h.addConstr(level - cumulative == 0)
            objective.append((level, rate))
    h.setObjective(_sum(c * v for v, c in objective))
    h.changeObjectiveOffset(constant)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    name = "optimal" if status == highspy.HighsModelStatus.kOptimal else h.modelStatusToString(status)
    if not info.primal_solution_status:
        return {"status": name, "schedule": None}
    values = h.getSolution().col_value
    schedule = [
        [order_id, i, machine, 60 * t0, 60 * (t0 + d), 0]
        for (order_id, i), options in starts.items()
        for var, t0, machine, d in options
        if values[var.index] > 0.5
    ]
    bought = []
    for supplier, day, q in purchases:
        quantity = round(values[q.index])
        if quantity > 0:
            unit = _unit_millis(supplier, day, quantity)
            bought.append(
                {
                    "supplier": supplier["id"],
                    "material": supplier["material"],
                    "order_day": day,
                    "arrival_day": day + supplier["lead_days"],
                    "quantity": quantity,
                    "unit_price": unit / 1000,
                    "cost": quantity * unit / 1000,
                }
            )
    return {
        "status": name,
        "schedule": schedule,
        "purchases": bought,
        "objective": h.getObjectiveValue(),
        "bound": info.mip_dual_bound,
    }


def _sum(terms: Any) -> Any:
    total = None
    for term in terms:
        total = term if total is None else total + term
    return total


if __name__ == "__main__":
    request = json.loads(sys.stdin.read())
    json.dump(build_and_solve(request["problem"], request["time_limit_s"]), sys.stdout)
