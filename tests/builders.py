"""Test data built through the real services, never hand-made rows."""

import itertools

from rest_framework.test import APIClient

from tenants import services
from tenants.actor import Actor
from tenants.models import Organization, User
from tenants.roles import ALL_SCOPES, Role

PASSWORD = "correct-horse-battery-staple"
_seq = itertools.count(1)


def make_user(email: str | None = None, *, verified: bool = False) -> User:
    """A signed-up person; `verified` confirms the address too (needed to create an organisation)."""
    user = services.user_sign_up(email=email or f"user{next(_seq)}@example.com", password=PASSWORD)
    if verified:
        services.email_verify(token=services.email_verification_send(user=user))
    return user


def make_org(*, owner: User | None = None, slug: str | None = None, region: str = "eu-central") -> Organization:
    n = next(_seq)
    return services.organization_create(
        name=f"Plant {n}", slug=slug or f"plant-{n}", country="DE", region=region, created_by=owner or make_user()
    )


def owner_actor(organization: Organization) -> Actor:
    owner = organization.memberships.get(role=Role.OWNER).user
    return Actor.for_member(organization=organization, user=owner, role=Role.OWNER)


def add_member(organization: Organization, role: str, user: User | None = None) -> User:
    user = user or make_user()
    _, token = services.invitation_create(
        organization=organization, email=user.email, role=role, actor=owner_actor(organization)
    )
    services.invitation_accept(token=token, user=user)
    return user


def make_key(organization: Organization, scopes=ALL_SCOPES, **kwargs) -> tuple:
    return services.api_key_create(
        organization=organization,
        name=f"key {next(_seq)}",
        scopes=list(scopes),
        actor=owner_actor(organization),
        **kwargs,
    )


def session_client(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def key_client(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client
