"""Solver time is billed: the one place scheduling reports usage to billing."""

import math

from billing.usage import usage_record

METER = "optimization.solver_seconds"


def solver_seconds_record(*, organization_id, job_id, seconds: float, attributes: dict) -> bool:
    """Bill a run's solver time in whole seconds, rounded up (billing's unit), at least one.

    The key is the job's, so a job that runs again after its worker died is billed once, not per attempt.
    """
    return usage_record(
        organization_id=organization_id,
        meter=METER,
        quantity=max(1, math.ceil(seconds)),
        idempotency_key=f"scheduling:{job_id}",
        attributes=attributes,
    )
