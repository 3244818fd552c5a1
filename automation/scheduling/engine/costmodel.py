"""The CP-SAT formulation of ``objective="cost"``: the schedule model plus purchasing, stock and money.

On top of ``ScheduleModel`` (operations start on multiples of ``CostData.slot``; optional orders get an
acceptance literal):

- energy and overtime: an operation's cost as a function of its start slot is a table per capable machine,
  picked with an element constraint (exact for slot-aligned starts);
- purchases: per supplier, order day and price tier, a quantity (zero, or within the tier, at least the MOQ);
- stock, per material and day: stock on hand plus arrivals up to the day minus consumption up to its end is
  never negative, and before the day's consumption never above the storage limit. Arrivals come at the start
  of a day and nothing else adds stock within one, so these two checks per day are exact. Consumption by day
  uses one literal per consuming operation and day ("started by the end of day d");
- holding: end-of-day stock summed over the days, linear in arrival days and consumption days;
- late penalties per started day late, and the margin of declined orders.

All money in thousandths (``to_millis``); ``total`` is the objective, constants included.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import accumulate

from ortools.sat.python import cp_model

from automation.scheduling.engine.availability import working_windows
from automation.scheduling.engine.costplan import jit_purchases
from automation.scheduling.engine.costs import MINUTES_PER_DAY, CostData, Purchase, days, to_millis
from automation.scheduling.engine.model import ScheduleModel, Value
from automation.scheduling.engine.problem import Assignment, FrozenOp, OpKey, Problem


@dataclass(frozen=True)
class _Buy:
    supplier: str
    material: str
    order_day: int
    arrival_day: int
    lowest: int  # the tier's smallest quantity
    highest: int
    unit_millis: int
    taken: cp_model.IntVar
    quantity: cp_model.IntVar


@dataclass(frozen=True)
class EnergyRates:
    """What running costs per minute on each machine (energy above idle plus overtime), as prefix sums, and the
    idle draw over every machine's working time, which no decision changes. Computed once per problem."""

    prefix: dict[str, list[float]]
    idle: float

    @classmethod
    def of(cls, problem: Problem) -> EnergyRates:
        assert problem.cost is not None and problem.horizon is not None
        cost, horizon = problem.cost, problem.horizon
        price = [cost.tariff_at(t) for t in range(horizon)]
        tariff_prefix = [0.0, *accumulate(price)]
        idle = 0.0
        prefix: dict[str, list[float]] = {}
        for machine_spec in problem.machines:
            power = cost.power_by_machine.get(machine_spec.id)
            if power is not None and power.idle_kw > 0:
                for start, end in working_windows(machine_spec, horizon=horizon):
                    idle += power.idle_kw * (tariff_prefix[end] - tariff_prefix[start]) / 60
            extra = power.running_kw - power.idle_kw if power is not None else 0.0
            per_minute = [extra * p / 60 for p in price]
            overtime = [o for o in cost.overtime if o.machine == machine_spec.id]
            for o in overtime:
                for t in range(o.start, min(o.end, horizon)):
                    per_minute[t] += o.cost_per_hour / 60
            if extra > 0 or overtime:
                prefix[machine_spec.id] = [0.0, *accumulate(per_minute)]
        return cls(prefix, idle)

    def millis(self, machine: str, start: int, duration: int) -> int:
        prefix = self.prefix.get(machine)
        if prefix is None:
            return 0
        end = min(len(prefix) - 1, start + duration)
        return to_millis(prefix[end] - prefix[start])


class CostModel(ScheduleModel):
    """``frozen`` operations keep machine and start and cost constants; ``declined`` optional orders stay
    declined. Both make the neighbourhoods of the cost search (``costlns.py``) small models."""

    def __init__(
        self,
        problem: Problem,
        *,
        frozen: Sequence[FrozenOp],
        now: int,
        rates: EnergyRates | None = None,
        declined: Collection[str] = (),
    ) -> None:
        assert problem.cost is not None and problem.horizon is not None
        cost = problem.cost
        super().__init__(
            problem,
            horizon=problem.horizon,
            frozen=frozen,
            now=now,
            optional=[t.order for t in cost.orders if t.optional],
            slot=cost.slot,
        )
        for order_id in declined:
            self.model.add(self.accepted[order_id] == 0)
        for order_id in {f.order for f in frozen} & self.accepted.keys():
            self.model.add(self.accepted[order_id] == 1)  # a frozen operation is being made: so is its order
        self._cost = cost
        self._rates = rates if rates is not None else EnergyRates.of(problem)
        self._days = days(problem)
        self._slot_of: dict[OpKey, cp_model.IntVar] = {}
        self._day_of: dict[OpKey, cp_model.IntVar] = {}
        self._by_day: dict[OpKey, dict[int, cp_model.IntVar]] = {}
        self._late_days: dict[str, cp_model.IntVar] = {}
        self._buys: list[_Buy] = []
        self._frozen_at = {(f.order, f.op_index): (f.start, f.machine) for f in frozen}
        terms = self._energy(problem) + self._orders(problem) + self._materials(problem)
        self.total: cp_model.LinearExprT = cp_model.LinearExpr.sum(terms)

    # energy and overtime --------------------------------------------------------------------------------------
    def _energy(self, problem: Problem) -> list[cp_model.LinearExprT]:
        horizon, slot = problem.horizon, self._cost.slot
        assert horizon is not None
        total: list[cp_model.LinearExprT] = [to_millis(self._rates.idle)]
        for op in self._ops:
            charged = [c for c in op.choices if c.machine in self._rates.prefix]
            if not charged:
                continue
            durations = self._problem.durations(op.key)
            if op.key in self._frozen_at:  # its machine and start are given
                start, machine = self._frozen_at[op.key]
                total.append(self._rates.millis(machine, start, durations[machine]))
                continue
            spent = self.model.new_int_var(0, 10**15, f"energy{op.key}")
            index = self.model.new_int_var(0, horizon // slot, f"slot{op.key}")
            self.model.add(op.start == slot * index)
            self._slot_of[op.key] = index
            for choice in charged:
                duration = durations[choice.machine]
                table = [
                    self._rates.millis(choice.machine, s, duration) if s + duration <= horizon else 0
                    for s in range(0, horizon + 1, slot)
                ]
                value = self.model.new_int_var(min(table), max(table), "")
                self.model.add_element(index, table, value)
                if choice.present is None:
                    self.model.add(spent >= value)
                else:
                    self.model.add(spent >= value).only_enforce_if(choice.present)
            total.append(spent)
        return total

    # lateness and declined orders -----------------------------------------------------------------------------
    def _orders(self, problem: Problem) -> list[cp_model.LinearExprT]:
        total: list[cp_model.LinearExprT] = []
        last = {order.id: self._op_by_key[(order.id, len(problem.routing(order.id)) - 1)] for order in problem.orders}
        for order in problem.orders:
            terms = self._cost.terms.get(order.id)
            if terms is None:
                continue
            accepted = self.accepted.get(order.id)
            if terms.optional and accepted is not None:
                total += [to_millis(terms.margin), -to_millis(terms.margin) * accepted]
            if order.due is None or terms.late_penalty_per_day <= 0:
                continue
            late = self.model.new_int_var(0, self._days, f"late_days_{order.id}")
            constraint = self.model.add(MINUTES_PER_DAY * late >= last[order.id].end - order.due)
            if accepted is not None:
                constraint.only_enforce_if(accepted)
            self._late_days[order.id] = late
            total.append(to_millis(terms.late_penalty_per_day) * late)
        return total

    # purchasing, stock, holding -------------------------------------------------------------------------------
    def _materials(self, problem: Problem) -> list[cp_model.LinearExprT]:
        cost, horizon_days = self._cost, self._days
        consumers: dict[str, list[tuple[OpKey, int]]] = defaultdict(list)
        for op in self._ops:
            for name, units in cost.consumption(problem, *op.key).items():
                consumers[name].append((op.key, units))
        total: list[cp_model.LinearExprT] = []
        for material in cost.materials:
            holding = to_millis(material.holding_per_day)
            total.append(holding * material.stock * horizon_days)
            users = consumers.get(material.id, [])
            demand = sum(units for _, units in users)
            arrivals: dict[int, list[cp_model.IntVar]] = defaultdict(list)
            for supplier in cost.suppliers_of(material.id):
                tiers = supplier.tiers()
                cap = max(demand - material.stock, supplier.moq, tiers[-1][0])
                if material.storage_limit is not None:
                    cap = min(cap, material.storage_limit)
                if not users or demand <= material.stock:
                    break
                for order_day in range(cost.order_day_from, horizon_days - supplier.lead_days):
                    arrival = order_day + supplier.lead_days
                    taken_here = []
                    for j, (lowest, factor) in enumerate(tiers):
                        highest = tiers[j + 1][0] - 1 if j + 1 < len(tiers) else cap
                        highest = min(highest, cap)
                        if lowest > highest:
                            continue
                        taken = self.model.new_bool_var("")
                        quantity = self.model.new_int_var(0, highest, "")
                        self.model.add(quantity >= lowest * taken)
                        self.model.add(quantity <= highest * taken)
                        unit = to_millis(supplier.price(order_day) * factor)
                        buy = _Buy(supplier.id, material.id, order_day, arrival, lowest, highest, unit, taken, quantity)
                        self._buys.append(buy)
                        taken_here.append(taken)
                        arrivals[arrival].append(quantity)
                        total.append((unit + holding * (horizon_days - arrival)) * quantity)
                    if len(taken_here) > 1:
                        self.model.add_at_most_one(taken_here)
            if not users:
                continue
            consumed_by: dict[int, list[cp_model.LinearExprT]] = defaultdict(list)
            for key, units in users:
                if key in self._frozen_at:
                    day = self._frozen_at[key][0] // MINUTES_PER_DAY
                    total.append(-holding * units * (horizon_days - day))
                    for d in range(day, horizon_days):
                        consumed_by[d].append(units)
                    continue
                day_var = self._consumption_day(key)
                total += [holding * units * day_var, -holding * units * horizon_days]
                for d, started in self._started_by(key).items():
                    consumed_by[d].append(units * started)
            arrived: list[cp_model.LinearExprT] = [material.stock]
            for d in range(horizon_days):
                arrived += arrivals.get(d, [])
                level = cp_model.LinearExpr.sum(arrived)
                self.model.add(level >= cp_model.LinearExpr.sum(consumed_by.get(d, [])))
                if material.storage_limit is not None:
                    before = cp_model.LinearExpr.sum(consumed_by.get(d - 1, []))
                    self.model.add(level <= material.storage_limit + before)
        return total

    def _consumption_day(self, key: OpKey) -> cp_model.IntVar:
        """The day the operation starts; past the last day when its order is declined."""
        if key in self._day_of:
            return self._day_of[key]
        op = self._op_by_key[key]
        day = self.model.new_int_var(0, self._days, f"day{key}")
        accepted = self.accepted.get(key[0])
        within = [
            self.model.add(op.start >= MINUTES_PER_DAY * day),
            self.model.add(op.start <= MINUTES_PER_DAY * day + MINUTES_PER_DAY - 1),
        ]
        if accepted is not None:
            for constraint in within:
                constraint.only_enforce_if(accepted)
            self.model.add(day == self._days).only_enforce_if(~accepted)
        else:
            self.model.add(day <= self._days - 1)
        self._day_of[key] = day
        return day

    def _started_by(self, key: OpKey) -> dict[int, cp_model.IntVar]:
        """Per day, whether the operation has started (and so consumed) by its end."""
        if key in self._by_day:
            return self._by_day[key]
        day = self._consumption_day(key)
        started: dict[int, cp_model.IntVar] = {}
        for d in range(self._days):
            literal = self.model.new_bool_var("")
            self.model.add(day <= d).only_enforce_if(literal)
            self.model.add(day >= d + 1).only_enforce_if(~literal)
            if d > 0:
                self.model.add_implication(started[d - 1], literal)
            started[d] = literal
        self._by_day[key] = started
        return started

    # reading and hinting --------------------------------------------------------------------------------------
    def purchases(self, value: Value) -> tuple[Purchase, ...]:
        bought = []
        for buy in self._buys:
            quantity = value(buy.quantity)
            if quantity > 0:
                bought.append(
                    Purchase(
                        buy.supplier,
                        buy.material,
                        buy.order_day,
                        buy.arrival_day,
                        quantity,
                        buy.unit_millis / 1000,
                        buy.unit_millis * quantity / 1000,
                    )
                )
        return tuple(bought)

    def hint(self, schedule: Sequence[Assignment], model: cp_model.CpModel | None = None) -> None:
        super().hint(schedule, model)
        add = (model or self.model).add_hint
        by_key = {a.key: a for a in schedule}
        scheduled = {a.order for a in schedule}
        for order_id, accepted in self.accepted.items():
            add(accepted, order_id in scheduled)
            if order_id not in scheduled:
                for op in self._ops:
                    if op.key[0] == order_id:
                        for choice in op.choices:
                            if choice.present is not None:
                                add(choice.present, False)
        for key, index in self._slot_of.items():
            if (a := by_key.get(key)) is not None:
                add(index, a.start // self._cost.slot)
        for key, day in self._day_of.items():
            a = by_key.get(key)
            start_day = a.start // MINUTES_PER_DAY if a is not None else self._days
            add(day, start_day)
            for d, literal in self._by_day.get(key, {}).items():
                add(literal, start_day <= d)
        finish: dict[str, int] = {}
        for a in schedule:
            finish[a.order] = max(finish.get(a.order, 0), a.end)
        for order_id, late in self._late_days.items():
            due = self._problem.order(order_id).due
            if order_id in finish and due is not None:
                add(late, max(0, -(-(finish[order_id] - due) // MINUTES_PER_DAY)))
        if len(by_key) != len(schedule):
            return
        bought = jit_purchases(self._problem, schedule) or ()
        amounts = {(p.supplier, p.order_day): p.quantity for p in bought}
        for buy in self._buys:
            quantity = amounts.get((buy.supplier, buy.order_day), 0)
            inside = buy.lowest <= quantity <= buy.highest
            add(buy.taken, inside)
            add(buy.quantity, quantity if inside else 0)


def cost_data(problem: Problem) -> CostData:
    if problem.cost is None:
        raise ValueError("objective 'cost' needs cost data on the problem")
    return problem.cost
