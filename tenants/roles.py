"""Roles grant scopes; API keys carry scopes. Views name the scopes each HTTP method needs."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    ORG_READ = "org:read", _("Read the organisation's resources")
    ORG_WRITE = "org:write", _("Create and change the organisation's resources")
    ORG_ADMIN = "org:admin", _("Manage members, invitations, API keys and settings")
    INFERENCE = "inference", _("Call the organisation's models")
    JOBS = "jobs", _("Start and cancel jobs")
    BILLING = "billing", _("See usage, quotas and invoices")


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    MEMBER = "member", _("Member")
    VIEWER = "viewer", _("Viewer")


ALL_SCOPES = frozenset(Scope.values)

ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.OWNER: ALL_SCOPES,
    Role.ADMIN: ALL_SCOPES,
    Role.MEMBER: frozenset({Scope.ORG_READ, Scope.ORG_WRITE, Scope.INFERENCE, Scope.JOBS}),
    Role.VIEWER: frozenset({Scope.ORG_READ}),
}

# Higher ranks may manage lower ones; only an owner may make or unmake an owner.
ROLE_RANK: dict[str, int] = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}
