"""One way for a portal page to belong to an organisation, mirroring `tenants.scoping` for the API.

`OrgPage` resolves the organisation from the URL and the signed-in member (404 for anyone else: another tenant's
organisation does not exist for them), refuses a suspended organisation except on the pages that let it pay,
checks the scope the HTTP method needs (a viewer gets a 403 page, never the action) and fetches objects only
through `owned()`, which filters by organisation.
"""

from typing import Any, cast

from django.contrib import messages as flash
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from tenants.audit import client_ip
from tenants.models import User
from tenants.roles import Scope
from tenants.scoping import member_actor, two_factor_missing
from tenants.selectors import organization_list_for_user


class Permissions:
    """What the member may do, for templates: `{% if can.admin %}`."""

    def __init__(self, scopes: frozenset[str]):
        self.read = Scope.ORG_READ in scopes
        self.write = Scope.ORG_WRITE in scopes
        self.admin = Scope.ORG_ADMIN in scopes
        self.jobs = Scope.JOBS in scopes
        self.billing = Scope.BILLING in scopes
        self.inference = Scope.INFERENCE in scopes


class OrgPage(LoginRequiredMixin):
    # The scope each HTTP method needs; a page narrows POST to what its actions need.
    scopes: dict[str, str] = {"GET": Scope.ORG_READ, "HEAD": Scope.ORG_READ, "POST": Scope.ORG_WRITE}
    # Billing pages stay open to a suspended organisation so that it can settle its invoice.
    allow_suspended = False
    section = ""
    # Set by the view this mixes into.
    request: HttpRequest
    kwargs: dict[str, Any]

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        actor = member_actor(user=request.user, org_slug=kwargs["org_slug"], ip_address=client_ip(request))
        if actor is None:
            raise Http404
        if two_factor_missing(actor):
            flash.error(
                request,
                _("%(org)s requires two-factor sign-in. Turn it on below, then open the organisation again.")
                % {"org": actor.organization.name},
            )
            return redirect("portal:account")
        self.actor = actor
        self.organization = actor.organization
        if not self.organization.is_active and not self.allow_suspended:
            return render(request, "portal/org/suspended.html", self.base_context(), status=403)
        needed = self.scopes.get(request.method, Scope.ORG_ADMIN)
        if needed not in actor.scopes:
            return render(request, "portal/refused.html", {**self.base_context(), "needed": needed}, status=403)
        return super().dispatch(request, *args, **kwargs)

    def base_context(self) -> dict:
        return {
            "org": self.organization,
            "actor": self.actor,
            "can": Permissions(self.actor.scopes),
            "section": self.section,
            "my_orgs": organization_list_for_user(user=cast(User, self.request.user)),  # dispatch let no anonymous in
        }

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(self.base_context())
        return context

    def owned(self, model, **lookup):
        """An object of this organisation, or 404."""
        return get_object_or_404(model, organization=self.organization, **lookup)


def errors_into(form, exc: ValidationError) -> None:
    """A service's ValidationError onto the form, under the field it names when the form has that field."""
    for field, messages in getattr(exc, "message_dict", {None: exc.messages}).items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)
