"""What-if scenarios and robust plans (``engine.scenarios``, ``engine.robust``) on small cost problems whose
best plans are known; every plan is checked by the independent ``check_plan``."""

from __future__ import annotations

import pytest

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
    PricePoint,
    Problem,
    ProblemError,
    Product,
    Supplier,
    check_plan,
    solve,
)
from automation.scheduling.engine.forecast import PriceForecast
from automation.scheduling.engine.robust import solve_robust
from automation.scheduling.engine.scenarios import (
    LeadTimeChange,
    MachineDown,
    Plan,
    PriceChange,
    SupplierPrices,
    TariffChange,
    apply_scenario,
    compare_plans,
    plan_cost,
    sample_price_scenarios,
)

DAY = 1440


def plant(*, lead: int = 0, release: int = 5 * DAY, due: int | None = None) -> Problem:
    """One press; order A (10 units of steel) released on day 5, due a day later; holding 0.1 per unit-day."""
    product = Product("bracket", (Operation((Option("PRESS", 60),)),))
    cost = CostData(
        materials=(Material("steel", holding_per_day=0.1),),
        suppliers=(Supplier("acme", "steel", (PricePoint(0, 10.0),), lead_days=lead),),
        bom=(BomLine("bracket", 0, "steel", 10),),
        power=(MachinePower("PRESS", running_kw=10),),
        tariff=tuple(1.0 if 8 <= h < 20 else 0.1 for h in range(24)),
        orders=(OrderTerms("A", late_penalty_per_day=100.0),),
    )
    order = Order("A", "bracket", 1, release=release, due=release + DAY if due is None else due)
    return Problem((Machine("PRESS"),), (product,), (order,), horizon=8 * DAY, cost=cost)


def plan_of(problem: Problem, seconds: float = 15) -> Plan:
    result = solve(problem, objective="cost", time_limit_s=seconds, workers=2)
    assert result.status in ("optimal", "feasible"), result
    assert check_plan(problem, result.schedule, result.purchases) == []
    return Plan(problem, result.schedule, result.purchases)


def test_changes_apply_to_the_data_they_name_and_bad_ones_are_refused_together() -> None:
    base = plant(lead=1)
    changed = apply_scenario(
        base,
        [
            PriceChange("steel", 8, from_day=3),
            TariffChange(2.0, hours=tuple(range(8, 20))),
            LeadTimeChange("acme", 5),
            MachineDown("PRESS", 0, DAY),
        ],
    )
    assert changed.cost is not None
    (acme,) = changed.cost.suppliers
    assert (acme.price(2), acme.price(3), acme.price(7)) == (10.0, pytest.approx(10.8), pytest.approx(10.8))
    assert acme.lead_days == 6
    assert (changed.cost.tariff_at(7 * 60), changed.cost.tariff_at(8 * 60), changed.cost.tariff_at(DAY + 19 * 60)) == (
        0.1,
        2.0,
        2.0,
    )
    assert changed.machines[0].downtime == ((0, DAY),)
    with pytest.raises(ProblemError) as refused:
        apply_scenario(base, [PriceChange("tin", 5), LeadTimeChange("nobody", 1), MachineDown("LATHE", 0, 60)])
    assert len(refused.value.issues) == 3


def test_a_what_if_price_rise_buys_earlier_and_the_comparison_says_what_changed() -> None:
    """Catches a comparison that misses moved purchases, or a re-plan that does worse than keeping the base."""
    base = plan_of(plant())
    assert [p.order_day for p in base.purchases] == [5]  # flat prices: just in time
    problem = apply_scenario(base.problem, [PriceChange("steel", 20, from_day=3)])  # +2 per unit from day 3
    scenario = plan_of(problem)
    comparison = compare_plans(base, scenario)
    (bought,) = comparison["purchases"]
    assert bought["supplier"] == "acme" and bought["base_orders"] == [[5, 10]] and bought["orders"][0][0] < 3
    # 10 units at 10 (before the rise) plus holding of at most 5 days * 0.1 * 10 = 5: material unchanged
    assert comparison["cost"]["material"]["delta"] == 0
    assert 0 < comparison["cost"]["holding"]["delta"] <= 5
    kept = comparison["base_plan_kept"]
    assert kept["feasible"] and kept["total"] == pytest.approx(comparison["cost"]["total"]["base"] + 20)
    assert kept["saved_by_replanning"] > 0
    assert comparison["orders"] == [] or all(o["change"] == "moved" for o in comparison["orders"])


def test_a_longer_lead_time_breaks_the_base_plan_and_makes_the_order_late() -> None:
    base = plan_of(plant(lead=0, release=0, due=DAY))
    problem = apply_scenario(base.problem, [LeadTimeChange("acme", 2)])  # steel cannot come before day 2
    scenario = plan_of(problem)
    comparison = compare_plans(base, scenario)
    kept = comparison["base_plan_kept"]
    assert not kept["feasible"] and kept["total"] is None and kept["violations"]
    (order,) = comparison["orders"]
    assert order["order"] == "A" and order["change"] == "newly_late" and order["start"] >= 2 * DAY
    assert comparison["cost"]["late"]["delta"] == pytest.approx(200.0)  # ends a day and an hour late: 2 days


def test_a_robust_plan_is_never_worse_in_expectation_than_the_plan_for_the_mean_prices() -> None:
    """The forecast says 10 throughout; one scenario keeps it, one has steel at 16 from day 3. The plan for
    the mean price buys just in time (day 5); over both scenarios buying before day 3 is cheaper (+3 expected
    per unit against at most 0.5 of holding), which the robust plan finds."""
    problem = plant()
    scenarios = [problem, apply_scenario(problem, [PriceChange("steel", 60, from_day=3)])]
    result, report = solve_robust(problem, scenarios, time_limit_s=20, workers=2)
    assert check_plan(problem, result.schedule, result.purchases) == []
    assert result.costs is not None
    by_plan = {c["plan"]: c for c in report["candidates"]}
    mean_plan = plan_of(problem)
    mean_costs = [plan_cost(s, mean_plan.schedule, mean_plan.purchases).total for s in scenarios]
    expected_mean = sum(mean_costs) / len(mean_costs)
    assert by_plan["mean_prices"]["expected_cost"] == pytest.approx(expected_mean, abs=0.01)
    assert report["expected_cost"] <= expected_mean + 0.01
    assert report["chosen"] == "scenario_mean" and report["expected_cost"] < expected_mean - 20
    assert result.purchases[0].order_day < 3
    assert report["per_scenario"] == by_plan["scenario_mean"]["per_scenario"]
    assert report["worst_cost"] == max(report["per_scenario"])


def test_sampled_price_scenarios_follow_the_forecast_interval() -> None:
    forecast = PriceForecast("acme", "test", 30, 0.9, mean=(10.0, 11.0), lower=(8.0, 8.0), upper=(12.0, 14.0))
    drawn = sample_price_scenarios([forecast], samples=400, seed=3)
    assert drawn == sample_price_scenarios([forecast], samples=400, seed=3)  # deterministic
    day1 = sorted(paths[0].prices[1] for paths in drawn)
    assert all(isinstance(paths[0], SupplierPrices) for paths in drawn)
    # about 5 % of the draws beyond each end of the 90 % interval, the median near the mean
    assert 0.02 < sum(v > 14.0 for v in day1) / 400 < 0.09 and 0.02 < sum(v < 8.0 for v in day1) / 400 < 0.09
    assert day1[200] == pytest.approx(11.0, abs=0.4)
