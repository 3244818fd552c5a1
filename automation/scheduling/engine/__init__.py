"""Production-scheduling core of Lightsout: Python on OR-Tools CP-SAT, with numba for the tabu search; no Django.

The control plane maps its models to a ``Problem`` (integer minutes from the
horizon start), calls ``solve`` and maps the returned ``Assignment`` rows back.
``diagnose`` explains infeasibility per order; ``check_schedule`` verifies any
schedule independently of the solver; ``compute_kpis``, ``schedule_csv`` and
``gantt_png`` turn a schedule into figures, a file and a picture. For
re-planning, ``add_downtime`` and ``freeze_started`` prepare the inputs of a
new ``solve(..., frozen=..., now=...)``.
"""

from automation.scheduling.engine.diagnosis import Finding, Reason, diagnose
from automation.scheduling.engine.export import schedule_csv
from automation.scheduling.engine.feasibility import check_schedule
from automation.scheduling.engine.gantt import gantt_png
from automation.scheduling.engine.jobshop import problem_from_jobshop
from automation.scheduling.engine.kpis import Kpis, compute_kpis
from automation.scheduling.engine.problem import (
    Assignment,
    FrozenOp,
    Machine,
    Operation,
    Option,
    Order,
    Problem,
    ProblemError,
    Product,
    SetupTime,
)
from automation.scheduling.engine.rescheduling import add_downtime, freeze_started
from automation.scheduling.engine.solver import MixWeights, Objective, SolveResult, Status, solve

__all__ = [
    "Assignment",
    "Finding",
    "FrozenOp",
    "Kpis",
    "Machine",
    "MixWeights",
    "Objective",
    "Operation",
    "Option",
    "Order",
    "Problem",
    "ProblemError",
    "Product",
    "Reason",
    "SetupTime",
    "SolveResult",
    "Status",
    "add_downtime",
    "check_schedule",
    "compute_kpis",
    "diagnose",
    "freeze_started",
    "gantt_png",
    "problem_from_jobshop",
    "schedule_csv",
    "solve",
]
