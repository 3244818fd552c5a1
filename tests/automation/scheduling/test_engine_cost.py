"""``objective="cost"``: purchasing, stock, energy tariffs, overtime, penalties and optional orders.

Every plan the solver returns is checked by the independent ``check_plan`` and priced by ``evaluate_plan``.
"""

from __future__ import annotations

import dataclasses

import pytest

from automation.scheduling.engine import (
    Assignment,
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
    ProblemError,
    Product,
    Purchase,
    SolveResult,
    Supplier,
    check_plan,
    evaluate_plan,
    solve,
    usual_practice,
)

DAY = 1440


def plant(
    *,
    prices: tuple[PricePoint, ...] = (PricePoint(0, 10.0),),
    holding: float = 0.1,
    release: int = 5 * DAY,
    lead: int = 0,
    stock: int = 0,
    moq: int = 1,
    breaks: tuple[PriceBreak, ...] = (),
    storage: int | None = None,
    terms: tuple[OrderTerms, ...] = (),
    days: int = 8,
) -> Problem:
    """One press that needs 10 units of steel per order; one order released on ``release``."""
    product = Product("bracket", (Operation((Option("PRESS", 60),)),))
    cost = CostData(
        materials=(Material("steel", stock=stock, holding_per_day=holding, storage_limit=storage),),
        suppliers=(Supplier("acme", "steel", prices, lead_days=lead, moq=moq, breaks=breaks),),
        bom=(BomLine("bracket", 0, "steel", 10),),
        orders=terms,
    )
    orders = (Order("A", "bracket", 1, release=release, due=release + DAY),)
    return Problem((Machine("PRESS"),), (product,), orders, horizon=days * DAY, cost=cost)


def solved(problem: Problem, seconds: float = 20) -> SolveResult:
    result = solve(problem, objective="cost", time_limit_s=seconds, workers=2)
    assert result.status in ("optimal", "feasible"), result
    assert check_plan(problem, result.schedule, result.purchases) == []
    assert result.costs is not None and result.objective is not None
    # the model counts thousandths: its objective is the independent price of the plan, to rounding
    assert result.costs.total == pytest.approx(result.objective / 1000, abs=0.01 * (len(result.schedule) + 1))
    return result


def test_checker_refuses_consumption_before_arrival_and_negative_stock() -> None:
    problem = plant(lead=2)
    on_day_5 = (Assignment("A", 0, "PRESS", 5 * DAY, 5 * DAY + 60),)
    late_delivery = (Purchase("acme", "steel", 4, 6, 10, 10.0, 100.0),)
    violations = check_plan(problem, on_day_5, late_delivery)
    assert any("consumed before it arrived" in v for v in violations)
    assert check_plan(problem, on_day_5, ()) != []  # no stock, nothing bought: negative
    in_time = (Purchase("acme", "steel", 3, 5, 10, 10.0, 100.0),)
    assert check_plan(problem, on_day_5, in_time) == []
    wrong_lead = (Purchase("acme", "steel", 4, 5, 10, 10.0, 100.0),)
    assert any("lead time" in v for v in check_plan(problem, on_day_5, wrong_lead))


def test_solved_plans_never_run_stock_negative_nor_consume_before_arrival() -> None:
    problem = plant(lead=3, release=0, stock=4, moq=5)
    result = solved(problem)
    (purchase,) = result.purchases
    (op,) = result.schedule
    assert purchase.arrival_day * DAY <= op.start  # 4 in stock do not cover 10: wait for the delivery
    assert purchase.quantity >= 6 and purchase.order_day == 0


def test_a_price_rise_moves_purchases_earlier_when_holding_is_cheaper() -> None:
    rise = (PricePoint(0, 10.0), PricePoint(3, 12.0))
    cheap_holding = solved(plant(prices=rise, holding=0.1))
    (early,) = cheap_holding.purchases
    assert early.order_day < 3  # 5 days * 0.1 held < 2.0 saved per unit
    costly_holding = solved(plant(prices=rise, holding=1.0))
    (late,) = costly_holding.purchases
    assert late.order_day == 5  # 3 days of holding (3.0) cost more than the rise: buy when needed
    flat = solved(plant(holding=0.1))
    assert flat.purchases[0].order_day == 5


def test_minimum_order_quantity_and_quantity_breaks() -> None:
    with_moq = solved(plant(moq=25))
    assert with_moq.purchases[0].quantity == 25
    # half price from 10 units, and 10 are needed: the whole order gets the break
    discounted = solved(plant(breaks=(PriceBreak(10, 0.5),)))
    assert discounted.purchases[0].unit_price == pytest.approx(5.0)
    # 20% off from 12 units: 12 * 8 = 96 beats 10 * 10 = 100, holding the two spare units costs 0.6
    bulk = solved(plant(breaks=(PriceBreak(12, 0.8),)))
    assert bulk.purchases[0].quantity == 12


def test_storage_limit_is_respected() -> None:
    problem = plant(storage=12, moq=1, stock=0)
    two = Order("B", "bracket", 1, release=6 * DAY, due=7 * DAY)
    problem = dataclasses.replace(problem, orders=(*problem.orders, two))
    result = solved(problem)
    assert len(result.purchases) == 2  # 20 units never fit in 12 at once
    assert check_plan(problem, result.schedule, (Purchase("acme", "steel", 0, 0, 20, 10.0, 200.0),)) != []


def energy_plant(*, due: int, penalty: float, overtime: bool = False) -> Problem:
    """A 2-hour, 100 kW operation released at 08:00; peak 08:00-12:00 costs ten times night power."""
    tariff = tuple(1.0 if 8 <= hour < 12 else 0.1 for hour in range(24))
    product = Product("casting", (Operation((Option("FURNACE", 120),)),))
    cost = CostData(
        power=(MachinePower("FURNACE", running_kw=100, idle_kw=5),),
        tariff=tariff,
        overtime=(Overtime("FURNACE", 12 * 60, 24 * 60, 500.0),) if overtime else (),
        orders=(OrderTerms("C", late_penalty_per_day=penalty),),
    )
    order = Order("C", "casting", 1, release=8 * 60, due=due)
    return Problem((Machine("FURNACE"),), (product,), (order,), horizon=DAY, cost=cost)


def test_a_tariff_peak_moves_energy_heavy_operations_out_when_due_dates_allow() -> None:
    relaxed = solved(energy_plant(due=DAY, penalty=1000))
    (op,) = relaxed.schedule
    assert op.start >= 12 * 60  # after the peak
    assert relaxed.costs is not None and relaxed.costs.energy < 100
    tight = solved(energy_plant(due=10 * 60, penalty=1000))
    assert tight.schedule[0].start == 8 * 60  # the penalty outweighs the peak: run at once
    cheap_penalty = solved(energy_plant(due=10 * 60, penalty=1))
    assert cheap_penalty.schedule[0].start >= 12 * 60  # a day late costs 1, the peak 180


def test_overtime_costs_steer_work_into_regular_hours() -> None:
    result = solved(energy_plant(due=DAY, penalty=1000, overtime=True))
    (op,) = result.schedule
    assert op.end <= 12 * 60  # overtime (500/h) costs more than the peak (180 for the operation)
    assert result.costs is not None and result.costs.overtime == 0


def optional_plant(*, optional: bool) -> Problem:
    problem = plant(
        prices=(PricePoint(0, 100.0),),
        release=0,
        terms=(OrderTerms("A", late_penalty_per_day=10, optional=optional, margin=200),),
    )
    return problem


def test_an_order_that_costs_more_than_its_margin_is_declined_only_when_allowed() -> None:
    allowed = optional_plant(optional=True)
    result = solved(allowed)
    assert result.schedule == () and result.purchases == ()
    assert result.costs is not None and result.costs.declined == 200
    required = optional_plant(optional=False)
    kept = solved(required)
    assert [a.order for a in kept.schedule] == ["A"]
    assert kept.costs is not None and kept.costs.material == 1000
    assert any("not optional" in v for v in check_plan(required, (), ()))


def test_a_profitable_optional_order_is_kept() -> None:
    problem = plant(release=0, terms=(OrderTerms("A", optional=True, margin=500),))
    result = solved(problem)
    assert [a.order for a in result.schedule] == ["A"]


def test_usual_practice_buys_just_in_time_from_the_cheapest_supplier() -> None:
    problem = plant(release=2 * DAY)
    assert problem.cost is not None
    dearer = Supplier("bolt", "steel", (PricePoint(0, 11.0),), lead_days=0)
    problem = dataclasses.replace(
        problem, cost=dataclasses.replace(problem.cost, suppliers=(*problem.cost.suppliers, dearer))
    )
    plan = usual_practice(problem)
    assert plan is not None
    schedule, purchases = plan
    assert check_plan(problem, schedule, purchases) == []
    assert [(p.supplier, p.arrival_day, p.quantity) for p in purchases] == [("acme", 2, 10)]
    ours = solved(problem)
    assert ours.costs is not None
    assert ours.costs.total <= evaluate_plan(problem, schedule, purchases).total + 1e-6


def test_bad_cost_data_is_refused_with_every_issue() -> None:
    product = Product("p", (Operation((Option("M", 1),)),))
    with pytest.raises(ProblemError) as raised:
        Problem(
            (Machine("M"),),
            (product,),
            (Order("o", "p"),),
            horizon=DAY,
            cost=CostData(
                materials=(Material("steel", stock=-1),),
                suppliers=(Supplier("s", "copper", ()), Supplier("t", "steel", (PricePoint(0, 1),), moq=0)),
                bom=(BomLine("p", 3, "steel", 1), BomLine("q", 0, "tin", 0)),
                power=(MachinePower("X", 1, 2),),
                tariff=(-1.0,),
                orders=(OrderTerms("nobody"),),
            ),
        )
    issues = "\n".join(raised.value.issues)
    for expected in (
        "stock must not be negative",
        "unknown material 'copper'",
        "needs at least one price",
        "minimum order quantity",
        "no such operation",
        "unknown product",
        "unknown material 'tin'",
        "quantity per unit must be positive",
        "unknown machine 'X'",
        "tariff prices must not be negative",
        "unknown order 'nobody'",
    ):
        assert expected in issues
    with pytest.raises(ProblemError, match="needs a horizon"):
        Problem((Machine("M"),), (product,), (Order("o", "p"),), cost=CostData())


def test_other_objectives_ignore_cost_data() -> None:
    problem = plant(release=0)
    result = solve(problem, objective="makespan", time_limit_s=5)
    assert result.status == "optimal" and result.objective == 60 and result.purchases == ()


def generated(seed: int) -> Problem:
    from benchmarks.scheduling_cost import generate  # the benchmark's generator, with its seeds, in the repository

    return generate(seed=seed, pattern="volatile", orders=8, ops=3, machines=3, materials=2, days=5)


def test_the_neighbourhood_search_for_large_plans_keeps_every_rule_and_beats_usual_practice(monkeypatch) -> None:
    monkeypatch.setattr("automation.scheduling.engine.costsolve.FULL_MODEL_OPS", 0)  # as if the plan were large
    problem = generated(11)
    usual = usual_practice(problem)
    assert usual is not None
    seen: list[int] = []
    result = solve(problem, objective="cost", time_limit_s=15, workers=1, on_solution=lambda v, b, s, w: seen.append(v))
    assert result.status == "feasible" and result.best_bound is None
    assert check_plan(problem, result.schedule, result.purchases) == []
    assert result.costs is not None
    assert result.costs.total <= evaluate_plan(problem, *usual).total
    assert seen and seen == sorted(seen, reverse=True) and seen[-1] == result.objective


def test_a_cancelled_cost_run_returns_its_best_plan() -> None:
    problem = generated(12)
    result = solve(problem, objective="cost", time_limit_s=30, workers=1, should_stop=lambda: True)
    assert result.status == "cancelled"
    assert result.schedule and check_plan(problem, result.schedule, result.purchases) == []
