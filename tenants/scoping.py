"""The one tenant-scoping mechanism of the control-plane API.

Every view under `/api/v1/orgs/{org_slug}/` inherits `OrganizationScopedViewMixin`. It resolves the
organisation from the URL and the caller (a member through a session or user token, or an API key bound to
that organisation), answers 404 when the caller does not belong there (another tenant's organisation does not
exist for them), refuses work for a suspended organisation, checks the scope the method needs, and filters
every queryset by organisation.

Subclasses may not override `get_queryset`, `get_object` or `get_permissions`: forgetting to scope is
impossible rather than merely wrong. To shape the queryset (`select_related`, annotations) a view overrides
`get_base_queryset`, whose result is still filtered by organisation. There is no unscoped escape hatch: a view
that must read across organisations does not belong under `/orgs/{org_slug}/`.

The serializers of a scoped view get the organisation in their context, and
`CodeRelatedField` resolves a reference by its code within it, so another tenant's object "does not exist".
"""

from functools import cached_property
from typing import Any, cast

from rest_framework import exceptions, permissions, serializers, status

from foundation.api.errors import ApiError

from .actor import Actor
from .audit import client_ip
from .authentication import KeyPrincipal
from .models import Membership, Organization
from .roles import Scope

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def organization_suspended_error(organization: Organization) -> ApiError:
    reason = f" ({organization.suspended_reason})" if organization.suspended_reason else ""
    return ApiError(
        f"The organisation {organization.slug} is suspended{reason}. Contact support or settle the open invoice.",
        code="organization_suspended",
        status_code=status.HTTP_403_FORBIDDEN,
    )


def two_factor_missing(actor: Actor) -> bool:
    """A person in an organisation that requires a second factor, without one of their own."""
    return bool(
        actor.user is not None
        and actor.organization is not None
        and actor.organization.require_two_factor
        and not actor.user.two_factor_enabled
    )


def two_factor_required_error(organization: Organization) -> ApiError:
    return ApiError(
        f"The organisation {organization.slug} requires two-factor sign-in: turn it on for your account "
        "(POST /api/v1/me/two-factor) and sign in again with a code.",
        code="two_factor_required_by_organization",
        status_code=status.HTTP_403_FORBIDDEN,
    )


def member_actor(*, user, org_slug: str, ip_address: str | None = None) -> Actor | None:
    """A signed-in user inside the named organisation, or None when they are not a member (the API and the
    portal both answer that with 404)."""
    membership = (
        Membership.objects.select_related("organization").filter(organization__slug=org_slug, user=user).first()
    )
    if membership is None:
        return None
    return Actor.for_member(
        organization=membership.organization, user=user, role=membership.role, ip_address=ip_address
    )


def resolve_actor(request, org_slug: str) -> Actor:
    """The caller inside the named organisation, or 404 if the caller has no business there."""
    principal = request.user
    ip = client_ip(request)
    actor: Actor | None
    if isinstance(principal, KeyPrincipal):
        api_key = principal.api_key
        if api_key.organization.slug != org_slug:
            raise exceptions.NotFound()
        actor = Actor.for_api_key(api_key=api_key, ip_address=ip)
    elif principal is not None and principal.is_authenticated:
        actor = member_actor(user=principal, org_slug=org_slug, ip_address=ip)
        if actor is None:
            raise exceptions.NotFound()
    else:
        raise exceptions.NotAuthenticated()
    organization = cast(Organization, actor.organization)  # members and keys always act inside one
    if not organization.is_active:
        raise organization_suspended_error(organization)
    if two_factor_missing(actor):
        raise two_factor_required_error(organization)
    return actor


class HasOrganizationScope(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        actor = view.actor
        needed = view.required_scope(request)
        if needed not in actor.scopes:
            raise exceptions.PermissionDenied(f"This action needs the {needed} scope.")
        return True


# `action_scopes` of what hands out secrets that act for the organisation (device keys, webhook endpoints).
ADMIN_WRITES: dict[str, str] = {action: Scope.ORG_ADMIN for action in ("create", "update", "partial_update", "destroy")}


class OrganizationScopedViewMixin:
    """Base of every organisation-owned API view. Declare `queryset` (unscoped) and, if needed, scopes."""

    method_scopes: dict[str, str] = {
        "GET": Scope.ORG_READ,
        "HEAD": Scope.ORG_READ,
        "OPTIONS": Scope.ORG_READ,
        "POST": Scope.ORG_WRITE,
        "PUT": Scope.ORG_WRITE,
        "PATCH": Scope.ORG_WRITE,
        "DELETE": Scope.ORG_WRITE,
    }
    # Per-action overrides, e.g. {"cancel": Scope.JOBS, "create": Scope.ORG_ADMIN}.
    action_scopes: dict[str, str] = {}
    organization_field = "organization"
    # Set by the view this mixes into.
    request: Any  # a DRF Request, which the stubs' View and APIView declare differently
    kwargs: dict[str, Any]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("get_queryset", "get_permissions", "get_object"):
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} overrides {name}: organisation-scoped views may not. "
                    "Override get_base_queryset to shape the queryset; it is scoped all the same."
                )

    @cached_property
    def actor(self) -> Actor:
        return resolve_actor(self.request, self.kwargs["org_slug"])

    @property
    def organization(self) -> Organization:
        return cast(Organization, self.actor.organization)  # resolve_actor's actors act inside one

    def required_scope(self, request) -> str:
        action = getattr(self, "action", None)
        return self.action_scopes.get(action or "") or self.method_scopes[request.method]

    def get_permissions(self):
        return [permissions.IsAuthenticated(), HasOrganizationScope()]

    # Exact filters on lists, query parameter -> lookup ({"asset": "asset__code"} answers `?asset=P4`); the queryset
    # is already the organisation's.
    list_filters: dict[str, str] = {}

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if getattr(self, "action", None) == "list":
            for param, lookup in self.list_filters.items():
                value = self.request.query_params.get(param)
                if value:
                    queryset = queryset.filter(**{lookup: value})
        return queryset

    def get_base_queryset(self):
        """The queryset before scoping; override to add select_related or annotations."""
        return self.queryset.all()

    def get_queryset(self):
        return self.get_base_queryset().filter(**{self.organization_field: self.organization})

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):  # the schema generator has no organisation
            context["organization"] = self.organization
        return context


class CodeRelatedField(serializers.SlugRelatedField):
    """Another object of the caller's organisation, by its code or another unique field (the view's serializer
    context carries the organisation)."""

    def __init__(self, model, slug_field: str = "code", **kwargs):
        kwargs.setdefault(
            "error_messages", {"does_not_exist": f"No {model._meta.verbose_name} with the {slug_field} {{value}}."}
        )
        super().__init__(slug_field=slug_field, queryset=model.objects.all(), **kwargs)

    def get_queryset(self):
        return super().get_queryset().filter(organization=self.context["organization"])
