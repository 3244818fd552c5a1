"""Plan and payment method, usage against the quotas, invoices."""

import logging

import stripe
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from billing import stripe_api
from billing.models import Invoice, Plan
from billing.selectors import invoice_estimate, ledger_daily, usage_summary
from billing.services import payment_method_add, subscription_change_plan, subscription_for
from tenants.roles import Scope

from ..access import OrgPage
from ..charts import bar_chart, line_chart

logger = logging.getLogger(__name__)


class BillingPage(OrgPage, TemplateView):
    scopes = {"GET": Scope.BILLING, "HEAD": Scope.BILLING, "POST": Scope.BILLING}
    allow_suspended = True

    @property
    def subscription(self):
        return subscription_for(organization=self.organization)


class PlanAndInvoices(BillingPage):
    template_name = "portal/billing/plan.html"
    section = "billing"

    def get_context_data(self, **kwargs):
        subscription = self.subscription
        card, setup_intent, stripe_error = None, None, ""
        try:
            card = stripe_api.payment_method_summary(subscription=subscription)
            if card is None:  # the card form is shown only then; no SetupIntent per page view otherwise
                setup_intent = stripe_api.setup_intent_create(subscription=subscription)
        except stripe.StripeError as exc:  # Stripe unreachable: the page still shows plans and invoices
            logger.warning("Stripe did not answer for %s: %s", self.organization.slug, exc)
            stripe_error = str(exc)
        now = timezone.now()
        return super().get_context_data(
            subscription=subscription,
            card=card,
            setup_intent=setup_intent,
            stripe_error=stripe_error,
            stripe_js_url=settings.STRIPE_JS_URL,
            stripe_publishable_key=settings.STRIPE_PUBLISHABLE_KEY,
            plans=Plan.objects.filter(is_active=True).prefetch_related("meter_prices").order_by("monthly_fee"),
            invoices=Invoice.objects.filter(organization=self.organization).order_by("-period_start")[:24],
            estimate=invoice_estimate(subscription=subscription, now=now),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        subscription = self.subscription
        try:
            if request.POST.get("action") == "plan":
                plan = Plan.objects.filter(code=request.POST.get("plan", ""), is_active=True).first()
                if plan is None:
                    raise ValidationError(_("Choose one of the plans shown."))
                subscription_change_plan(subscription=subscription, plan=plan, actor=self.actor)
                messages.success(request, _("You are now on the %(plan)s plan.") % {"plan": plan.name})
            elif request.POST.get("action") == "card":
                card = payment_method_add(
                    subscription=subscription, actor=self.actor, setup_intent_id=request.POST.get("setup_intent", "")
                )
                messages.success(request, _("Card ending %(last4)s saved.") % card)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("portal:billing", org_slug=self.organization.slug)


class Usage(BillingPage):
    template_name = "portal/billing/usage.html"
    section = "usage"

    def get_context_data(self, **kwargs):
        summary = usage_summary(subscription=self.subscription, now=timezone.now())
        shares = [
            (m.meter, round(100 * m.used / (m.limit or m.included), 1))
            for m in summary.meters
            if (m.limit or m.included)
        ]
        daily = ledger_daily(organization_id=self.organization.pk, period=summary.period)
        charts = [
            line_chart(
                title=_("%(meter)s per day") % {"meter": meter},
                x_label=_("Day of month"),
                series={meter: [(day.day, total) for day, total in days]},
            )
            for meter, days in daily.items()
        ]
        share_chart = bar_chart(
            title=_("Share of quota used this month (%)"),
            label=_("Meter"),
            value_label="%",
            bars=shares,
            limits={name: 100.0 for name, _v in shares},
        )
        return super().get_context_data(summary=summary, share_chart=share_chart, daily_charts=charts, **kwargs)
