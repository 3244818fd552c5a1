from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=False)
router.register("billing/invoices", api.InvoiceViewSet, basename="billing-invoice")

# Mounted under /api/v1/orgs/<org_slug>/ by controlplane.urls.
org_urlpatterns = [
    path("billing/usage", api.UsageView.as_view(), name="billing-usage"),
    path("billing/estimate", api.EstimateView.as_view(), name="billing-estimate"),
    *router.urls,
]

# Mounted under /api/v1/ by controlplane.urls: Stripe's webhook, not organisation-scoped.
public_urlpatterns = [
    path("billing/stripe/webhook", api.stripe_webhook, name="billing-stripe-webhook"),
]
