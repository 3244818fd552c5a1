"""Production-scheduling core of Lightsout: Python on OR-Tools CP-SAT, with numba for the tabu search; no Django.

The control plane maps its models to a ``Problem`` (integer minutes from the
horizon start), calls ``solve`` and maps the returned ``Assignment`` rows back.
``diagnose`` explains infeasibility per order; ``check_schedule`` verifies any
schedule independently of the solver; ``objective="cost"`` plans purchases with the schedule (``CostData`` on the
problem), ``check_plan`` verifies stock and arrivals, ``evaluate_plan`` prices a plan and ``usual_practice``
is the plant's plan without the optimiser. ``compute_kpis``, ``schedule_csv`` and
``gantt_png`` turn a schedule into figures, a file and a picture. For
re-planning, ``add_downtime`` and ``freeze_started`` prepare the inputs of a
new ``solve(..., frozen=..., now=...)``.
"""

from automation.scheduling.engine.costcheck import check_plan, declined_orders, evaluate_plan
from automation.scheduling.engine.costplan import jit_purchases, usual_practice
from automation.scheduling.engine.costs import (
    BomLine,
    CostBreakdown,
    CostData,
    MachinePower,
    Material,
    OrderTerms,
    Overtime,
    PriceBreak,
    PricePoint,
    Purchase,
    Supplier,
)
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
    "BomLine",
    "CostBreakdown",
    "CostData",
    "Finding",
    "FrozenOp",
    "Kpis",
    "Machine",
    "MachinePower",
    "Material",
    "MixWeights",
    "Objective",
    "Operation",
    "Option",
    "Order",
    "OrderTerms",
    "Overtime",
    "PriceBreak",
    "PricePoint",
    "Problem",
    "ProblemError",
    "Product",
    "Purchase",
    "Reason",
    "SetupTime",
    "SolveResult",
    "Status",
    "Supplier",
    "add_downtime",
    "check_plan",
    "check_schedule",
    "compute_kpis",
    "declined_orders",
    "diagnose",
    "evaluate_plan",
    "freeze_started",
    "gantt_png",
    "jit_purchases",
    "problem_from_jobshop",
    "schedule_csv",
    "solve",
    "usual_practice",
]
