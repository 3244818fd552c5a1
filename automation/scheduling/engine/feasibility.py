"""An independent check of a schedule against every rule of the problem.

Written from the problem's rules, not from the solver's model, so that a
modelling mistake shows up as a violation instead of being checked against
itself. The solver uses it to vet its heuristic start; tests run it on every
schedule the solver returns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from itertools import pairwise

from automation.scheduling.engine.availability import inside_one, working_windows
from automation.scheduling.engine.problem import Assignment, FrozenOp, Problem


def check_schedule(
    problem: Problem, schedule: Sequence[Assignment], *, frozen: Sequence[FrozenOp] = (), now: int = 0
) -> list[str]:
    """Every rule the schedule breaks, one sentence each; empty when it is feasible."""
    violations = []
    by_key = {a.key: a for a in schedule}
    expected = {key for key, _ in problem.operations()}
    if len(by_key) < len(schedule):
        violations.append("some operation is scheduled more than once")
    violations += [f"order {o!r} operation {i} is not scheduled" for o, i in sorted(expected - by_key.keys())]
    violations += [f"order {o!r} operation {i} does not exist" for o, i in sorted(by_key.keys() - expected)]
    horizon = problem.horizon if problem.horizon is not None else max((a.end for a in schedule), default=0)
    windows = {m.id: working_windows(m, horizon=horizon) for m in problem.machines}
    fixed = {(op.order, op.op_index): op for op in frozen}
    for a in schedule:
        if a.key not in expected:
            continue
        what = f"order {a.order!r} operation {a.op_index} on {a.machine!r} at {a.start}-{a.end}"
        operation = problem.routing(a.order)[a.op_index]
        duration = problem.durations(a.key).get(a.machine)
        if duration is None:
            violations.append(f"{what}: machine cannot do this operation")
        elif a.end - a.start != duration:
            violations.append(f"{what}: lasts {a.end - a.start} min, processing time is {duration}")
        if a.setup < 0:
            violations.append(f"{what}: negative setup")
        if a.start < problem.order(a.order).release:
            violations.append(f"{what}: starts before the order's release")
        violations += [
            f"{what}: starts before material {m!r} arrives"
            for m in operation.materials
            if a.start < problem.material_arrivals.get(m, horizon)
        ]
        if a.machine in windows and not inside_one(windows[a.machine], a.start - a.setup, a.end):
            violations.append(f"{what}: it or its setup is outside the machine's working time")
        if a.op_index > 0 and (before := by_key.get((a.order, a.op_index - 1))) and a.start < before.end:
            violations.append(f"{what}: starts before the previous operation ends at {before.end}")
        if a.key in fixed and (fixed[a.key].machine, fixed[a.key].start) != (a.machine, a.start):
            violations.append(f"{what}: frozen on {fixed[a.key].machine!r} at {fixed[a.key].start}")
        if a.key not in fixed and a.start - a.setup < now:
            violations.append(f"{what}: it or its setup starts before now ({now})")
    known = [a for a in schedule if a.key in expected]
    violations += _machine_violations(problem, known)
    if problem.hard_due_dates:
        for a in known:
            due = problem.order(a.order).due
            if a.op_index == len(problem.routing(a.order)) - 1 and due is not None and a.end > due:
                violations.append(f"order {a.order!r} ends at {a.end}, after its hard due date {due}")
    return violations


def _machine_violations(problem: Problem, schedule: Sequence[Assignment]) -> list[str]:
    """Operations on one machine, in start order, must leave room for the changeover between them."""
    sequences = defaultdict(list)
    for a in schedule:
        sequences[a.machine].append(a)
    violations = []
    for machine, assignments in sequences.items():
        assignments.sort(key=lambda a: a.start)
        for before, after in pairwise(assignments):
            needed = problem.setup_minutes(machine, problem.family(before.order), problem.family(after.order))
            if after.setup < needed or after.start - after.setup < before.end:
                violations.append(
                    f"machine {machine!r}: order {after.order!r} operation {after.op_index} at {after.start} "
                    f"(setup {after.setup}) leaves no {needed} min of setup after order {before.order!r} "
                    f"operation {before.op_index}, which ends at {before.end}"
                )
    return violations
