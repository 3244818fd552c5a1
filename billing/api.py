"""Billing API for members with the `billing` scope: usage against quota, the running estimate, invoices."""

import stripe
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework import mixins, viewsets
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from foundation.api.errors import error_body
from tenants.roles import Scope
from tenants.scoping import OrganizationScopedViewMixin

from . import selectors, serializers
from .models import Invoice
from .services import subscription_for
from .webhooks import WebhookRejected, stripe_event_receive


class BillingScoped(OrganizationScopedViewMixin):
    method_scopes = dict.fromkeys(OrganizationScopedViewMixin.method_scopes, Scope.BILLING)


class UsageView(BillingScoped, GenericAPIView):
    """This month's usage per meter against the plan's included quantities and hard limits."""

    serializer_class = serializers.UsageSummarySerializer

    def get(self, request, org_slug):
        subscription = subscription_for(organization=self.organization)
        return Response(
            self.get_serializer(selectors.usage_summary(subscription=subscription, now=timezone.now())).data
        )


class EstimateView(BillingScoped, GenericAPIView):
    """What this month's invoice would be if the month closed now."""

    serializer_class = serializers.EstimateSerializer

    def get(self, request, org_slug):
        subscription = subscription_for(organization=self.organization)
        return Response(
            self.get_serializer(selectors.invoice_estimate(subscription=subscription, now=timezone.now())).data
        )


class InvoiceViewSet(BillingScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Invoice.objects.prefetch_related("lines")
    serializer_class = serializers.InvoiceSerializer


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """Stripe's signed events. Not for people: no session, no key, only the signature."""
    try:
        outcome = stripe_event_receive(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except WebhookRejected as exc:
        return JsonResponse(error_body(code="invalid_signature", message=str(exc)), status=400)
    except stripe.StripeError:
        # Nothing was recorded: Stripe delivers the event again later.
        return JsonResponse(error_body(code="stripe_unavailable", message="Stripe could not be reached."), status=503)
    return JsonResponse({"id": outcome.event.id, "duplicate": outcome.duplicate, "outcome": outcome.event.outcome})
