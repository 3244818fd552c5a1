"""Choosing or creating an organisation, the overview with its first-run checklist, members and invitations,
API keys and the audit log."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from automation.maintenance.models import Asset
from automation.scheduling.models import Run
from inference.models import FineTuningJob, TenantModel
from tenants.audit import client_ip
from tenants.models import ApiKey, AuditEvent, Invitation, Membership
from tenants.roles import Scope
from tenants.selectors import organization_list_for_user
from tenants.services import (
    api_key_create,
    api_key_revoke,
    invitation_create,
    invitation_revoke,
    membership_change_role,
    membership_remove,
    organization_create_allowed,
    organization_create_by_person,
    organization_update,
)

from ..access import OrgPage, errors_into
from ..forms import ApiKeyForm, InvitationForm, OrganizationForm, RoleForm


@login_required
def home(request):
    organizations = list(organization_list_for_user(user=request.user))
    if len(organizations) == 1:
        return redirect("portal:dashboard", org_slug=organizations[0].slug)
    if not organizations:
        return redirect("portal:org-create")
    return render(request, "portal/org/choose.html", {"organizations": organizations})


@login_required
def org_create(request):
    if not organization_create_allowed(user=request.user):
        return render(request, "portal/account/verify_sent.html", {"blocked": True}, status=403)
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organization = organization_create_by_person(
                user=request.user, ip_address=client_ip(request), **form.cleaned_data
            )
        except ValidationError as exc:
            errors_into(form, exc)
        else:
            return redirect("portal:billing", org_slug=organization.slug)
    return render(request, "portal/org/create.html", {"form": form})


class Dashboard(OrgPage, TemplateView):
    template_name = "portal/org/dashboard.html"
    section = "dashboard"

    def get_context_data(self, **kwargs):
        from billing.services import subscription_for

        org = self.organization
        subscription = subscription_for(organization=org)
        checklist = [
            (_("Choose a plan and add a payment method"), bool(subscription.stripe_customer_id), "portal:billing"),
            (
                _("Invite a colleague"),
                Membership.objects.filter(organization=org).count() > 1
                or Invitation.objects.filter(organization=org).exists(),
                "portal:members",
            ),
            (
                _("Fine-tune your first model"),
                FineTuningJob.objects.filter(organization=org).exists(),
                "portal:finetuning",
            ),
            (
                _("Run your first production schedule"),
                Run.objects.filter(organization=org).exists(),
                "portal:scheduling",
            ),
            (
                _("Register your first asset for predictive maintenance"),
                Asset.objects.filter(organization=org).exists(),
                "portal:maintenance",
            ),
        ]
        return super().get_context_data(
            subscription=subscription,
            checklist=checklist,
            checklist_done=all(done for _, done, _ in checklist),
            model_count=TenantModel.objects.filter(organization=org).count(),
            **kwargs,
        )


class Members(OrgPage, TemplateView):
    template_name = "portal/org/members.html"
    section = "members"
    scopes = {**OrgPage.scopes, "POST": Scope.ORG_ADMIN}

    def get_context_data(self, **kwargs):
        org = self.organization
        kwargs.setdefault("invite_form", InvitationForm())
        return super().get_context_data(
            members=Membership.objects.filter(organization=org).select_related("user").order_by("created_at"),
            invitations=Invitation.objects.filter(
                organization=org, accepted_at__isnull=True, revoked_at__isnull=True
            ).order_by("-created_at"),
            role_form=RoleForm(),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        action = request.POST.get("action")
        try:
            if action == "invite":
                form = InvitationForm(request.POST)
                if not form.is_valid():
                    return self.render_to_response(self.get_context_data(invite_form=form), status=400)
                try:
                    invitation_create(organization=self.organization, actor=self.actor, **form.cleaned_data)
                except ValidationError as exc:
                    errors_into(form, exc)
                    return self.render_to_response(self.get_context_data(invite_form=form), status=400)
                messages.success(request, _("Invitation sent to %(email)s.") % form.cleaned_data)
            elif action == "role":
                membership = self.owned(Membership, pk=request.POST.get("membership"))
                membership_change_role(membership=membership, role=request.POST.get("role", ""), actor=self.actor)
                messages.success(request, _("Role changed."))
            elif action == "remove":
                membership = self.owned(Membership, pk=request.POST.get("membership"))
                membership_remove(membership=membership, actor=self.actor)
                messages.success(request, _("Member removed."))
            elif action == "two_factor":
                required = request.POST.get("require_two_factor") == "on"
                organization_update(organization=self.organization, actor=self.actor, require_two_factor=required)
                messages.success(
                    request,
                    _("Members must now sign in with a second factor.")
                    if required
                    else _("Two-factor sign-in is optional again."),
                )
            elif action == "revoke":
                invitation_revoke(
                    invitation=self.owned(Invitation, pk=request.POST.get("invitation")), actor=self.actor
                )
                messages.success(request, _("Invitation revoked."))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("portal:members", org_slug=self.organization.slug)


class Keys(OrgPage, TemplateView):
    template_name = "portal/org/keys.html"
    section = "keys"
    scopes = {**OrgPage.scopes, "POST": Scope.ORG_ADMIN}

    def get_context_data(self, **kwargs):
        kwargs.setdefault("form", ApiKeyForm())
        return super().get_context_data(
            keys=ApiKey.objects.filter(organization=self.organization).order_by("-created_at"), **kwargs
        )

    def post(self, request, *args, **kwargs):
        if request.POST.get("action") == "revoke":
            api_key_revoke(api_key=self.owned(ApiKey, pk=request.POST.get("key")), actor=self.actor)
            messages.success(request, _("Key revoked. Requests with it are refused from now on."))
            return redirect("portal:keys", org_slug=self.organization.slug)
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                key, plaintext = api_key_create(organization=self.organization, actor=self.actor, **form.cleaned_data)
            except ValidationError as exc:
                errors_into(form, exc)
            else:
                # Shown in this response only: the plaintext is not stored anywhere.
                return self.render_to_response(self.get_context_data(new_key=key, plaintext=plaintext))
        return self.render_to_response(self.get_context_data(form=form), status=400)


class Audit(OrgPage, TemplateView):
    template_name = "portal/org/audit.html"
    section = "audit"
    scopes = {"GET": Scope.ORG_ADMIN, "HEAD": Scope.ORG_ADMIN}

    def get_context_data(self, **kwargs):
        events = AuditEvent.objects.filter(organization=self.organization).order_by("-created_at")
        page = Paginator(events, 50).get_page(self.request.GET.get("page"))
        return super().get_context_data(page=page, **kwargs)
