"""The default plan catalogue (Starter, Pro, Enterprise) and the snapshot of a plan that invoices keep.

Operators edit plans in the admin; `catalogue_seed` only creates plans that do not exist yet, so it never
overwrites their edits. The data migration runs it, and `subscription_for` runs it when the default plan is
missing (a database emptied by a test's flush, or a fresh one migrated without data).
"""

from typing import Any

from .meters import SizeClass, meter_get

M = 1_000_000


def _open(price: str) -> list[dict]:
    return [{"up_to": None, "unit_price": price}]


def _two(up_to: int, first: str, then: str) -> list[dict]:
    return [{"up_to": up_to, "unit_price": first}, {"up_to": None, "unit_price": then}]


# code -> (name, monthly fee, size classes, {meter: (included, hard limit or None, tiers)}); prices in EUR.
MeterTerms = tuple[int, int | None, list[dict[str, Any]]]
DEFAULT_CATALOGUE: dict[str, tuple[str, str, list[SizeClass], dict[str, MeterTerms]]] = {
    "starter": (
        "Starter",
        "0.00",
        [SizeClass.SMALL],
        {
            "inference.input_tokens.small": (2 * M, 10 * M, _open("0.0000002")),
            "inference.output_tokens.small": (1 * M, 5 * M, _open("0.0000006")),
            "training.tokens": (0, 2 * M, _open("0.000004")),
            "optimization.solver_seconds": (600, 7_200, _open("0.002")),
            "maintenance.model_runs": (100, 2_000, _open("0.01")),
            "maintenance.captures": (1_000, 20_000, _open("0.002")),
            "quality.analyses": (50, 1_000, _open("0.05")),
            "assistant.tool_calls": (1_000, 20_000, _open("0.002")),
        },
    ),
    "pro": (
        "Pro",
        "499.00",
        [SizeClass.SMALL, SizeClass.MEDIUM],
        {
            "inference.input_tokens.small": (50 * M, 500 * M, _two(100 * M, "0.00000015", "0.0000001")),
            "inference.output_tokens.small": (20 * M, 200 * M, _two(50 * M, "0.0000005", "0.0000004")),
            "inference.input_tokens.medium": (10 * M, 200 * M, _two(50 * M, "0.0000008", "0.0000006")),
            "inference.output_tokens.medium": (5 * M, 100 * M, _two(20 * M, "0.0000024", "0.000002")),
            "training.tokens": (20 * M, 500 * M, _two(100 * M, "0.000003", "0.0000025")),
            "optimization.solver_seconds": (36_000, 720_000, _open("0.0015")),
            "maintenance.model_runs": (10_000, 200_000, _open("0.008")),
            "maintenance.captures": (100_000, 2_000_000, _open("0.001")),
            "quality.analyses": (2_000, 50_000, _open("0.03")),
            "assistant.tool_calls": (50_000, 1_000_000, _open("0.001")),
        },
    ),
    "enterprise": (
        "Enterprise",
        "4999.00",
        [SizeClass.SMALL, SizeClass.MEDIUM, SizeClass.LARGE],
        {
            "inference.input_tokens.small": (500 * M, None, _open("0.00000008")),
            "inference.output_tokens.small": (200 * M, None, _open("0.0000003")),
            "inference.input_tokens.medium": (100 * M, None, _open("0.0000005")),
            "inference.output_tokens.medium": (50 * M, None, _open("0.0000015")),
            "inference.input_tokens.large": (20 * M, None, _two(200 * M, "0.000002", "0.0000015")),
            "inference.output_tokens.large": (10 * M, None, _two(100 * M, "0.000006", "0.000005")),
            "training.tokens": (200 * M, None, _open("0.000002")),
            "optimization.solver_seconds": (360_000, None, _open("0.001")),
            "maintenance.model_runs": (100_000, None, _open("0.005")),
            "maintenance.captures": (1_000_000, None, _open("0.0005")),
            "quality.analyses": (20_000, None, _open("0.02")),
            "assistant.tool_calls": (500_000, None, _open("0.0005")),
        },
    ),
}


def catalogue_seed(plan_model, meter_price_model) -> None:
    """Create the default plans that are missing. Takes the models so the data migration can pass its own."""
    for code, (name, fee, sizes, meters) in DEFAULT_CATALOGUE.items():
        plan, created = plan_model.objects.get_or_create(
            code=code, defaults={"name": name, "monthly_fee": fee, "allowed_size_classes": [str(s) for s in sizes]}
        )
        if created:
            meter_price_model.objects.bulk_create(
                meter_price_model(plan=plan, meter=meter, included_quantity=included, hard_limit=limit, tiers=tiers)
                for meter, (included, limit, tiers) in meters.items()
            )


def plan_snapshot(plan) -> dict:
    """Everything rating and quotas need from a plan, as plain JSON."""
    return {
        "code": plan.code,
        "name": plan.name,
        "currency": plan.currency,
        "monthly_fee": str(plan.monthly_fee),
        "allowed_size_classes": sorted(plan.allowed_size_classes),
        "meters": {
            price.meter: {
                "unit": meter_get(price.meter).unit,
                "included": price.included_quantity,
                "hard_limit": price.hard_limit,
                "tiers": price.tiers,
            }
            for price in plan.meter_prices.all()
        },
    }
