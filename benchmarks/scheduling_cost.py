"""Cost-objective scheduling benchmark: generated plants with rising, falling and volatile material prices.

Generator (``generate``, below; seeds listed in ``SEEDS``): machines work around the clock, 22:00-06:00 is
overtime at a cost per hour; a weekly time-of-use tariff (night 0.10, day 0.20, weekday peaks 08-12 and
17-20 at 0.35 per kWh); each machine draws 20-150 kW running, 10% of that idle. Orders have one product each,
a routing of ``ops`` operations of 1-4 whole hours on one or two of the machines, a release, a due date and a
late penalty per day; 10% are optional with a margin. 40% of the operations consume one or two materials.
Each material has stock for about 15% of its demand, a holding cost of 0.3-1% of its price per day and two
suppliers (lead 1-4 days, MOQ, one with a 5% discount from 3x its MOQ). Price patterns per material: rising
(+0.8%/day), falling (-0.8%/day) or volatile (random walk, 3%/day), with supplier-specific noise.

(a) Usual practice vs ours: ``usual_practice`` (schedule by the dispatching rule for due dates, buy each
    material just in time from the supplier cheapest on the day) against ``solve(objective="cost")``, both
    priced by the independent ``evaluate_plan``; cost saved in percent per price pattern.
(b) Gap to the proven optimum on small instances: an independent time-indexed MILP solved by HiGHS to
    optimality (``cost_mip.py``; instances where it does not prove it are reported and left out of the mean),
    and the same CP-SAT model with a long limit as a second reference; our solve at ``--seconds`` (60 by the
    issue). The optimum is over slot-aligned plans (whole hours), which is also our
    search space: durations, tariff steps and day boundaries are whole hours in these instances.

    .venv/bin/python -m benchmarks scheduling_cost -- --part a --seconds 60
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from automation.scheduling.engine import (
    BomLine,
    CostData,
    Machine,
    MachinePower,
    Material,
    Operation,
    Option,
    Order,
    OrderTerms,
    Overtime,
    PriceBreak,
    PricePoint,
    Problem,
    Product,
    Supplier,
    check_plan,
    evaluate_plan,
    solve,
    usual_practice,
)

DAY = 1440
PATTERNS = ("rising", "falling", "volatile")
SEEDS = (11, 12, 13)
RESULTS = Path(__file__).resolve().parent / "results" / "scheduling_cost.md"


def weekly_tariff() -> tuple[float, ...]:
    prices = []
    for hour in range(168):
        weekday, h = divmod(hour, 24)
        if h < 6 or h >= 22 or weekday >= 5:
            prices.append(0.10)
        elif 8 <= h < 12 or 17 <= h < 20:
            prices.append(0.35)
        else:
            prices.append(0.20)
    return tuple(prices)


def generate(
    *,
    seed: int,
    pattern: str,
    orders: int = 20,
    ops: int = 4,
    machines: int = 5,
    materials: int = 4,
    days: int = 7,
) -> Problem:
    rng = random.Random(f"{seed}-{pattern}-{orders}-{ops}-{machines}-{materials}-{days}")
    machine_ids = [f"M{i}" for i in range(machines)]
    material_ids = [f"R{i}" for i in range(materials)]
    products, order_list, bom, terms = [], [], [], []
    demand = dict.fromkeys(material_ids, 0)
    total_hours = 0
    for n in range(orders):
        routing = []
        for i in range(ops):
            hours = rng.randint(1, 4)
            total_hours += hours
            options = rng.sample(machine_ids, rng.choice((1, 2)))
            routing.append(Operation(tuple(Option(m, 60 * hours) for m in options)))
            if rng.random() < 0.4:
                for material in rng.sample(material_ids, rng.choice((1, 1, 2))):
                    units = rng.randint(2, 20)
                    bom.append(BomLine(f"P{n}", i, material, units))
                    demand[material] += units
        products.append(Product(f"P{n}", tuple(routing)))
        work = sum(min(o.minutes_per_unit for o in op.options) for op in routing)
        release = rng.randrange(0, max(1, (days - 3) * 24)) * 60
        due = min(days * DAY, release + int(work * rng.uniform(2.0, 5.0)) + rng.randrange(0, 2) * DAY)
        due = max(due, release + int(work))
        order_list.append(Order(f"O{n}", f"P{n}", 1, release=release, due=due))
        optional = rng.random() < 0.1
        terms.append(OrderTerms(f"O{n}", rng.choice((50.0, 100.0, 200.0, 400.0)), optional, 2000.0 if optional else 0))
    # machines must be able to do the work: scale the horizon load by making sure days are enough
    machine_list = tuple(Machine(m) for m in machine_ids)
    overtime = tuple(
        Overtime(m, d * DAY + 22 * 60, min((d + 1) * DAY + 6 * 60, days * DAY), 40.0)
        for m in machine_ids
        for d in range(days)
        if d * DAY + 22 * 60 < days * DAY
    ) + tuple(Overtime(m, 0, 6 * 60, 40.0) for m in machine_ids)
    power = tuple(MachinePower(m, (kw := rng.randint(20, 150)), round(kw * 0.1, 1)) for m in machine_ids)
    mats, suppliers = [], []
    for material in material_ids:
        base = rng.uniform(10, 100)
        mats.append(
            Material(
                material,
                stock=int(demand[material] * 0.15),
                holding_per_day=round(base * rng.uniform(0.003, 0.01), 3),
            )
        )
        walk = [base]
        for _ in range(days):
            walk.append(walk[-1] * (1 + rng.gauss(0, 0.03)))
        for k in range(2):
            offset = rng.uniform(0.95, 1.08)
            points = []
            for day in range(days):
                if pattern == "rising":
                    price = base * offset * (1.008**day)
                elif pattern == "falling":
                    price = base * offset * (0.992**day)
                else:
                    price = walk[day] * offset
                points.append(PricePoint(day, round(price * rng.uniform(0.995, 1.005), 2)))
            moq = rng.choice((5, 10, 20))
            suppliers.append(
                Supplier(
                    f"S{material}-{k}",
                    material,
                    tuple(points),
                    lead_days=rng.randint(1, 3),
                    moq=moq,
                    breaks=(PriceBreak(3 * moq, 0.95),) if k == 0 else (),
                )
            )
    cost = CostData(
        materials=tuple(mats),
        suppliers=tuple(suppliers),
        bom=tuple(bom),
        power=power,
        tariff=weekly_tariff(),
        overtime=overtime,
        orders=tuple(terms),
        slot=60,
    )
    return Problem(machine_list, tuple(products), tuple(order_list), horizon=days * DAY, cost=cost)


def _recorder(seen: list[tuple[float, int]]) -> Callable[[int, int, object, float], None]:
    def record(value: int, bound: int, schedule: object, wall: float) -> None:
        seen.append((wall, value))

    return record


def part_a(
    seconds: float, scale: dict[str, int], seeds: Sequence[int], lines: list[str], patterns: Sequence[str] = PATTERNS
) -> None:
    lines += [
        "| pattern | seed | usual practice | ours: first plan (s) | ours at the end | saved % | status | seconds |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    saved: dict[str, list[float]] = {p: [] for p in patterns}
    for pattern in patterns:
        for seed in seeds:
            problem = generate(seed=seed, pattern=pattern, **scale)
            usual = usual_practice(problem)
            if usual is None:
                lines.append(f"| {pattern} | {seed} | (no plan) | | | | |")
                continue
            base = evaluate_plan(problem, *usual).total
            seen: list[tuple[float, int]] = []
            result = solve(problem, objective="cost", time_limit_s=seconds, on_solution=_recorder(seen))
            assert not check_plan(problem, result.schedule, result.purchases), "our plan breaks a rule"
            assert result.costs is not None
            ours = result.costs.total
            pct = 100 * (base - ours) / base
            saved[pattern].append(pct)
            lines.append(
                f"| {pattern} | {seed} | {base:,.0f} | {seen[0][1] / 1000:,.0f} ({seen[0][0]:.0f}) | {ours:,.0f} | "
                f"{pct:.1f} | {result.status} | "
                f"{result.wall_time:.0f} |"
            )
            print(lines[-1], flush=True)
    lines += ["", "| pattern | mean saved % |", "|---|---:|"]
    lines += [f"| {p} | {statistics.mean(v):.1f} |" for p, v in saved.items() if v]


def part_b(
    seconds: float, proof_seconds: float, seeds: Sequence[int], lines: list[str], *, mip_seconds: float = 600.0
) -> None:
    """Two references per instance: the independent MILP solved by HiGHS (``cost_mip``), and the same CP-SAT
    model with ``proof_seconds`` (0: skipped); our gap at ``seconds`` is against the HiGHS optimum."""
    from benchmarks.cost_mip import solve_mip

    lines += [
        "| pattern | seed | HiGHS MILP | HiGHS status | HiGHS s | CP-SAT reference | CP-SAT status | ours | gap % |",
        "|---|---|---:|---|---:|---:|---|---:|---:|",
    ]
    gaps = []
    small = {"orders": 8, "ops": 3, "machines": 3, "materials": 2, "days": 5}
    for pattern in PATTERNS:
        for seed in seeds:
            problem = generate(seed=seed, pattern=pattern, **small)
            mip = solve_mip(problem, time_limit_s=mip_seconds)
            assert not mip.violations, f"the MILP's plan breaks a rule: {mip.violations}"
            reference, reference_status = "(not run)", ""
            if proof_seconds > 0:
                proof = solve(problem, objective="cost", time_limit_s=proof_seconds)
                assert proof.costs is not None
                reference, reference_status = f"{proof.costs.total:,.2f}", f"{proof.status} ({proof.wall_time:.0f} s)"
            ours = solve(problem, objective="cost", time_limit_s=seconds)
            assert ours.costs is not None
            assert not check_plan(problem, ours.schedule, ours.purchases)
            gap = ""
            if mip.status == "optimal" and mip.total is not None:
                value = 100 * (ours.costs.total - mip.total) / mip.total
                gaps.append(value)
                gap = f"{value:.2f}"
            best = "" if mip.total is None else f"{mip.total:,.2f}"
            if mip.status != "optimal" and mip.bound is not None:
                best += f" (bound {mip.bound:,.2f})"
            lines.append(
                f"| {pattern} | {seed} | {best} | {mip.status} | {mip.seconds:.0f} | {reference} | "
                f"{reference_status} | {ours.costs.total:,.2f} | {gap} |"
            )
            print(lines[-1], flush=True)
    if gaps:
        lines += ["", f"Mean gap over {len(gaps)} instances HiGHS proved optimal: {statistics.mean(gaps):.2f}%"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--proof-seconds", type=float, default=300, help="CP-SAT reference; 0 skips it")
    parser.add_argument("--mip-seconds", type=float, default=600, help="limit of the HiGHS MILP")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--patterns", default=",".join(PATTERNS))
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--ops", type=int, default=10)
    parser.add_argument("--machines", type=int, default=30)
    parser.add_argument("--materials", type=int, default=20)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--output", default="", help="also write the tables to this file")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    lines: list[str] = [f"Run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    if args.part in ("a", "both"):
        scale = {k: getattr(args, k) for k in ("orders", "ops", "machines", "materials", "days")}
        lines += [f"## (a) usual practice vs ours, {args.seconds:.0f} s, scale {scale}", ""]
        part_a(args.seconds, scale, seeds, lines, args.patterns.split(","))
        lines.append("")
    if args.part in ("b", "both"):
        lines += [f"## (b) gap to the proven optimum, ours at {args.seconds:.0f} s", ""]
        part_b(args.seconds, args.proof_seconds, seeds, lines, mip_seconds=args.mip_seconds)
    print("\n".join(lines))
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
