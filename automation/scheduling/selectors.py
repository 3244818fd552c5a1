"""Reads of production scheduling for people: how much master data there is, the runs, and how a run's search
went (its better schedules, from the job's metrics events)."""

from dataclasses import dataclass

from django.db.models import QuerySet

from jobs.models import JobEvent
from tenants.models import Organization

from .models import (
    BomLine,
    Downtime,
    Machine,
    Material,
    Order,
    Product,
    Run,
    SetupTime,
    Supplier,
    SupplierPrice,
    TariffRate,
)


def master_data_counts(*, organization: Organization) -> dict[str, int]:
    """How many of each kind of master data the organisation has."""
    return {
        name: model.objects.filter(organization=organization).count()
        for name, model in (
            ("machines", Machine),
            ("materials", Material),
            ("products", Product),
            ("orders", Order),
            ("setup_times", SetupTime),
            ("downtimes", Downtime),
            ("suppliers", Supplier),
            ("supplier_prices", SupplierPrice),
            ("bom_lines", BomLine),
            ("tariff_hours", TariffRate),
        )
    }


def run_list(*, organization: Organization) -> QuerySet[Run]:
    """The organisation's runs, newest first, without their (possibly large) problem and schedule."""
    return (
        Run.objects.filter(organization=organization)
        .select_related("job")
        .defer("problem", "schedule", "frozen")
        .order_by("-created_at")
    )


@dataclass(frozen=True)
class Solution:
    """One better schedule the solver reported while it searched."""

    objective: int
    bound: int | None
    gap: float | None
    wall_time: float


def run_solutions(*, run: Run) -> list[Solution]:
    """Each better schedule found so far, in the order found (objectives fall, bounds rise)."""
    found = []
    events = JobEvent.objects.filter(
        job_id=run.job_id, organization_id=run.organization_id, level=JobEvent.Level.METRICS
    ).order_by("created_at", "id")
    for data in events.values_list("data", flat=True):
        if isinstance(data.get("objective"), int | float):
            found.append(
                Solution(
                    objective=data["objective"],
                    bound=data.get("bound"),
                    gap=data.get("gap"),
                    wall_time=float(data.get("wall_time") or 0.0),
                )
            )
    return found


def machine_facts(*, organization: Organization) -> list[dict[str, str]]:
    """The organisation's machines as plain facts, for the copilot's training data."""
    return [
        {
            "code": machine.code,
            "name": machine.name,
            "timezone": machine.timezone,
            "running_kw": f"{machine.running_kw.normalize():f}" if machine.running_kw else "",
            "idle_kw": f"{machine.idle_kw.normalize():f}" if machine.idle_kw else "",
        }
        for machine in Machine.objects.filter(organization=organization).order_by("code")
    ]


def product_facts(*, organization: Organization) -> list[dict[str, str]]:
    """The organisation's products with their routing (operations in order, each with the machines that can run
    it), for the copilot's training data."""
    products = (
        Product.objects.filter(organization=organization)
        .prefetch_related("operations__options__machine")
        .order_by("code")
    )
    facts = []
    for product in products:
        steps = []
        for operation in sorted(product.operations.all(), key=lambda o: o.position):
            machines = ", ".join(sorted(option.machine.code for option in operation.options.all()))
            label = operation.name or f"step {operation.position}"
            steps.append(f"{label} on {machines}" if machines else label)
        facts.append(
            {"code": product.code, "name": product.name, "family": product.family, "operations": "; ".join(steps)}
        )
    return facts
