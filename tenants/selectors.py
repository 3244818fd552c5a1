"""Reads for organisations, people and credentials."""

from django.db.models import QuerySet

from .models import Organization, User


def organization_list_for_user(*, user: User) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user).order_by("name")
