"""Refusals of work on billing grounds. They are API errors, so a control-plane view that lets one propagate
answers in the one error shape with the right status; the gateway maps them to OpenAI's shape itself."""

from datetime import datetime

from django.utils import timezone
from rest_framework import status

from foundation.api.errors import ApiError


class BillingRefusal(ApiError):
    pass


class QuotaExceeded(BillingRefusal):
    """429: the work would take the organisation past a hard limit. Says which limit and when it resets."""

    def __init__(
        self, *, meter: str, unit: str, limit: int, used: int, requested: int, resets_at: datetime, plan_name: str
    ):
        self.meter, self.limit, self.used, self.requested, self.resets_at = meter, limit, used, requested, resets_at
        message = (
            f"Quota exceeded for {meter}: the {plan_name} plan allows {limit:,} {unit}s per month, {used:,} are "
            f"used or reserved and this needs {requested:,} more. The limit resets at "
            f"{resets_at:%Y-%m-%d %H:%M} UTC; ask us to raise it or upgrade the plan."
        )
        super().__init__(message, code="quota_exceeded", status_code=status.HTTP_429_TOO_MANY_REQUESTS)
        # DRF turns `wait` into a Retry-After header.
        self.wait = max(1, int((resets_at - timezone.now()).total_seconds()))


class PaymentRequired(BillingRefusal):
    """402: an invoice is unpaid past its grace period (or the subscription was canceled)."""

    def __init__(self, message: str):
        super().__init__(message, code="payment_required", status_code=status.HTTP_402_PAYMENT_REQUIRED)


class PlanRestriction(BillingRefusal):
    """403: the plan does not include this meter (for instance a base-model size class)."""

    def __init__(self, message: str, *, meter: str):
        self.meter = meter
        super().__init__(message, code="plan_restriction", status_code=status.HTTP_403_FORBIDDEN)
