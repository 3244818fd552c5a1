"""The CP-SAT formulation.

Per operation a start and an end variable; per capable machine an optional
interval sharing them, exactly one present. An operation with one capable
machine gets a plain mandatory interval, so a classic job shop compiles to
the textbook model and nothing more. Working time enters twice: start
domains hold only starts whose operation fits a working window (cheap and
strong), and the gaps between windows are fixed intervals in the machine's
no-overlap, which also keeps changeovers out of them.

Changeovers, only on machines that have any: the interval an operation
occupies there begins ``setup`` minutes before the operation, and a circuit
over the machine's operations picks each one's predecessor, which fixes
``setup``. Machines without changeovers get no circuit at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import cast

from ortools.sat.python import cp_model

from automation.scheduling.engine.availability import gaps, start_ranges, working_windows
from automation.scheduling.engine.problem import Assignment, FrozenOp, OpKey, Problem

Value = Callable[[cp_model.LinearExprT], int]


@dataclass(frozen=True)
class _Changeover:
    setup: cp_model.IntVar
    occupied_from: cp_model.IntVar  # where the changeover begins, ``setup`` minutes before the operation


@dataclass
class _Choice:
    machine: str
    present: cp_model.IntVar | None  # None: the only machine, always used
    changeover: _Changeover | None = None  # None on machines without changeovers


@dataclass
class _Op:
    key: OpKey
    start: cp_model.IntVar
    end: cp_model.IntVar
    choices: list[_Choice] = field(default_factory=list)


class ScheduleModel:
    """Builds the constraints; the caller picks the objective from ``makespan`` and ``weighted_tardiness``."""

    def __init__(
        self,
        problem: Problem,
        *,
        horizon: int,
        frozen: Sequence[FrozenOp],
        now: int,
        optional: Collection[str] = (),
        slot: int = 1,
    ) -> None:
        """``optional``: orders the model may decline (``accepted`` holds their literals); ``slot``: operations
        that are not frozen start on multiples of it."""
        self.model = cp_model.CpModel()
        self.accepted: dict[str, cp_model.IntVar] = {o: self.model.new_bool_var(f"accept_{o}") for o in optional}
        self._problem = problem
        self._ops: list[_Op] = []
        self._op_by_key: dict[OpKey, _Op] = {}
        self._arcs: dict[str, dict[tuple[int, int], cp_model.IntVar]] = {}
        self._nodes: dict[str, list[OpKey]] = {}
        fixed = {(op.order, op.op_index): op for op in frozen}
        windows = {m.id: working_windows(m, horizon=horizon) for m in problem.machines}
        with_setups = problem.machines_with_setups()
        occupying: dict[str, list[cp_model.IntervalVar]] = defaultdict(list)
        last_ends: dict[str, cp_model.IntVar] = {}
        for key, operation in problem.operations():
            durations = problem.durations(key)
            if key in fixed:
                durations = {fixed[key].machine: durations[fixed[key].machine]}
                allowed = cp_model.Domain(fixed[key].start, fixed[key].start)
            else:
                order = problem.order(key[0])
                earliest = max([order.release, now, *(problem.material_arrivals[m] for m in operation.materials)])
                allowed = cp_model.Domain(earliest, horizon)
                if slot > 1:
                    allowed = cp_model.Domain.from_values(range(-(-earliest // slot) * slot, horizon + 1, slot))
            starts = {
                machine: cp_model.Domain.from_intervals(
                    start_ranges(windows[machine], duration=duration)
                ).intersection_with(allowed)
                for machine, duration in durations.items()
            }
            op = self._new_op(
                key, {m: d for m, d in starts.items() if not d.is_empty()}, horizon, self.accepted.get(key[0])
            )
            for choice in op.choices:
                duration = durations[choice.machine]
                # the operation itself, which ties start, duration on this machine and end together
                interval = self._interval(op.start, duration, op.end, choice.present)
                if choice.machine in with_setups:
                    setup = self.model.new_int_var_from_domain(
                        cp_model.Domain.from_values(sorted(self._setup_values(choice.machine, key[0]))), ""
                    )
                    # the past cannot host a changeover, except before an operation that already started
                    occupied_from = self.model.new_int_var(0 if key in fixed else now, horizon, "")
                    choice.changeover = _Changeover(setup, occupied_from)
                    # what keeps the machine busy: the changeover, then the operation
                    interval = self._interval(occupied_from, setup + duration, op.end, choice.present)
                occupying[choice.machine].append(interval)
            if key[1] > 0:
                self.model.add(op.start >= self._ops[-1].end)
            self._ops.append(op)
            self._op_by_key[key] = op
            last_ends[key[0]] = op.end
        for machine in with_setups:
            self._sequence(machine)
        for machine, intervals in occupying.items():
            closed = gaps(windows[machine], horizon=horizon)
            self.model.add_no_overlap(
                intervals + [self.model.new_fixed_size_interval_var(s, e - s, "") for s, e in closed]
            )
        self.makespan = self.model.new_int_var(0, horizon if last_ends else 0, "makespan")
        if last_ends:
            self.model.add_max_equality(self.makespan, list(last_ends.values()))
        self._tardiness: dict[str, cp_model.IntVar] = {}
        for order in problem.orders:
            if order.due is None:
                continue
            if problem.hard_due_dates:
                hard = self.model.add(last_ends[order.id] <= order.due)
                if order.id in self.accepted:
                    hard.only_enforce_if(self.accepted[order.id])
            late = self.model.new_int_var(0, max(0, horizon - order.due), f"tardiness_{order.id}")
            if order.id in self.accepted:
                self.model.add(late >= last_ends[order.id] - order.due).only_enforce_if(self.accepted[order.id])
            else:
                self.model.add_max_equality(late, [last_ends[order.id] - order.due, 0])
            self._tardiness[order.id] = late
        self.weighted_tardiness = sum(problem.order(o).weight * late for o, late in self._tardiness.items())

    def schedule(self, value: Value) -> tuple[Assignment, ...]:
        """The schedule in a solution; ``value`` is the solver's or a solution callback's ``value``."""
        assignments = []
        for op in self._ops:
            choice = next((c for c in op.choices if c.present is None or value(c.present)), None)
            if choice is None:
                continue  # a declined optional order
            setup = value(choice.changeover.setup) if choice.changeover else 0
            assignments.append(Assignment(*op.key, choice.machine, value(op.start), value(op.end), setup))
        return tuple(assignments)

    def hint(self, schedule: Sequence[Assignment], model: cp_model.CpModel | None = None) -> None:
        """Suggest ``schedule`` as the first solution; operations it lacks are left to the solver.

        ``model``: a clone of this model to hint instead (clones share the variables' indices).
        """
        by_key = {a.key: a for a in schedule}
        add = (model or self.model).add_hint
        for op in self._ops:
            if (a := by_key.get(op.key)) is None:
                continue
            add(op.start, a.start)
            add(op.end, a.end)
            for choice in op.choices:
                if choice.present is not None:
                    add(choice.present, choice.machine == a.machine)
                if choice.machine == a.machine and choice.changeover:
                    add(choice.changeover.setup, a.setup)
                    add(choice.changeover.occupied_from, a.start - a.setup)
        for machine, arcs in self._arcs.items():
            on_machine = [a for key in self._nodes[machine] if (a := by_key.get(key)) and a.machine == machine]
            node = {key: i for i, key in enumerate(self._nodes[machine], 1)}
            route = [0, *(node[a.key] for a in sorted(on_machine, key=lambda a: a.start)), 0]
            taken = set(pairwise(route))
            for (i, j), literal in arcs.items():
                if i != j or i == 0:  # self-loops of operations are negated presences, hinted above
                    add(literal, (i, j) in taken)
        if len(by_key) == len(self._ops):
            finish: dict[str, int] = {}
            for a in schedule:
                finish[a.order] = max(finish.get(a.order, 0), a.end)
            add(self.makespan, max(finish.values(), default=0))
            for order_id, late in self._tardiness.items():
                due = cast(int, self._problem.order(order_id).due)  # only orders with a due date have a tardiness
                add(late, max(0, finish[order_id] - due))

    def keep(self, model: cp_model.CpModel, schedule: Sequence[Assignment], kept: Collection[OpKey]) -> None:
        """Constrain ``model``, a clone of this model, to keep the ``kept`` operations of the complete, feasible
        ``schedule`` on their machines and in their order there; the other operations stay free.

        ``schedule`` itself satisfies every added constraint, so it remains a solution of ``model``. Each kept
        operation only has to follow the previous kept one on its machine, not keep its start: the part of the
        schedule around the free operations can still shift and close the gaps they leave.
        """
        sequences: dict[str, list[Assignment]] = defaultdict(list)
        for a in schedule:
            if a.key not in kept:
                continue
            sequences[a.machine].append(a)
            for choice in self._op_by_key[a.key].choices:
                if choice.present is not None:
                    model.add(choice.present == int(choice.machine == a.machine))
        for machine, assignments in sequences.items():
            assignments.sort(key=lambda a: a.start)
            for before, after in pairwise(assignments):
                choice = next(c for c in self._op_by_key[after.key].choices if c.machine == machine)
                # with changeovers the machine is busy from ``occupied_from``, before the operation starts
                begins = choice.changeover.occupied_from if choice.changeover else self._op_by_key[after.key].start
                model.add(begins >= self._op_by_key[before.key].end)

    def _new_op(
        self, key: OpKey, starts: dict[str, cp_model.Domain], horizon: int, accepted: cp_model.IntVar | None = None
    ) -> _Op:
        """Start, end and one choice per machine whose ``starts`` domain allows the operation."""
        anywhere = cp_model.Domain.from_values([])
        for domain in starts.values():
            anywhere = anywhere.union_with(domain)
        op = _Op(
            key,
            self.model.new_int_var_from_domain(anywhere, f"start{key}"),
            self.model.new_int_var(0, horizon, f"end{key}"),
        )
        if len(starts) == 1 and accepted is None:
            op.choices.append(_Choice(next(iter(starts)), None))
            return op
        op.choices += [_Choice(machine, self.model.new_bool_var(f"{key}@{machine}")) for machine in starts]
        if accepted is None:
            self.model.add_exactly_one(c.present for c in op.choices)
        else:
            self.model.add(
                cp_model.LinearExpr.sum([c.present for c in op.choices if c.present is not None]) == accepted
            )
        for choice in op.choices:
            self.model.add_linear_expression_in_domain(op.start, starts[choice.machine]).only_enforce_if(choice.present)
        return op

    def _interval(
        self,
        start: cp_model.LinearExprT,
        size: cp_model.LinearExprT,
        end: cp_model.IntVar,
        present: cp_model.IntVar | None,
    ) -> cp_model.IntervalVar:
        if present is None:
            return self.model.new_interval_var(start, size, end, "")
        return self.model.new_optional_interval_var(start, size, end, present, "")

    def _setup_values(self, machine: str, order_id: str) -> set[int]:
        family = self._problem.family(order_id)
        return {
            0,
            *(s.minutes for s in self._problem.setups if s.machine == machine and s.to_family == family),
        }

    def _sequence(self, machine: str) -> None:
        """Circuit through the operations that may run on ``machine``; node 0 is the idle machine."""
        nodes = [
            (op, choice.present, changeover)
            for op in self._ops
            for choice in op.choices
            if choice.machine == machine and (changeover := choice.changeover)
        ]
        if not nodes:
            return
        new_literal = self.model.new_bool_var
        arcs: dict[tuple[int, int], cp_model.IntVar] = {}
        for i, (before, present, changeover) in enumerate(nodes, 1):
            arcs[0, i] = new_literal("")
            self.model.add(changeover.setup == 0).only_enforce_if(arcs[0, i])
            arcs[i, 0] = new_literal("")
            if present is not None:
                arcs[i, i] = ~present
            family = self._problem.family(before.key[0])
            for j, (after, _, following) in enumerate(nodes, 1):
                if i == j:
                    continue
                arcs[i, j] = new_literal("")
                change = self._problem.setup_minutes(machine, family, self._problem.family(after.key[0]))
                self.model.add(following.setup == change).only_enforce_if(arcs[i, j])
                self.model.add(following.occupied_from >= before.end).only_enforce_if(arcs[i, j])
        if all(present is not None for _, present, _ in nodes):
            arcs[0, 0] = new_literal("")  # lets the machine stay unused
        self.model.add_circuit([(i, j, literal) for (i, j), literal in arcs.items()])
        self._arcs[machine] = arcs
        self._nodes[machine] = [op.key for op, _, _ in nodes]
