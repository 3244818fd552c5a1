"""Who is acting: a member (through a session or user token) or an API key, in one organisation."""

from dataclasses import dataclass, field

from .models import ApiKey, Organization, User
from .roles import ROLE_RANK, ROLE_SCOPES, Role


@dataclass(frozen=True)
class Actor:
    organization: Organization | None
    user: User | None = None
    api_key: ApiKey | None = None
    role: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    ip_address: str | None = None

    @classmethod
    def for_member(cls, *, organization, user, role, ip_address=None) -> "Actor":
        return cls(organization, user=user, role=role, scopes=ROLE_SCOPES[role], ip_address=ip_address)

    @classmethod
    def for_api_key(cls, *, api_key, ip_address=None) -> "Actor":
        return cls(api_key.organization, api_key=api_key, scopes=frozenset(api_key.scopes), ip_address=ip_address)

    @classmethod
    def system(cls, *, organization=None, user=None, ip_address=None) -> "Actor":
        """An operator in the admin (`user` is the operator), or the platform itself (billing suspensions)."""
        return cls(organization, user=user, role=Role.OWNER, scopes=ROLE_SCOPES[Role.OWNER], ip_address=ip_address)

    @property
    def rank(self) -> int:
        # An API key with org:admin manages like an admin, never like an owner.
        if self.role:
            return ROLE_RANK[self.role]
        return ROLE_RANK[Role.ADMIN] if "org:admin" in self.scopes else ROLE_RANK[Role.MEMBER]

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"key {self.api_key.name} (…{self.api_key.last_four})"
        return self.user.email if self.user else "system"

    def audit_kwargs(self) -> dict:
        return {
            "organization": self.organization,
            "actor": self.user,
            "api_key": self.api_key,
            "actor_label": self.label,
            "ip_address": self.ip_address,
        }
