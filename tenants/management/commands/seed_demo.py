"""Create the demo organisation of a local run: an owner, an operator for the admin, an API key.

Secrets are printed once, when they are created; a second run leaves everything as it is.
"""

import secrets

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from tenants import services
from tenants.actor import Actor
from tenants.models import Organization, Region, User
from tenants.roles import ALL_SCOPES, Role

OWNER_EMAIL = "owner@demo.lightsout.local"
OPERATOR_EMAIL = "operator@lightsout.local"
DEMO_SLUG = "demo"


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--region", default=Region.LOCAL, choices=Region.values)

    @transaction.atomic
    def handle(self, *args, region: str, **options):
        if Organization.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write(
                f"Demo organisation '{DEMO_SLUG}' exists; its secrets were printed when it was "
                f"created. Sign in as {OWNER_EMAIL}, or make a new key in the portal or API."
            )
            return
        owner_password = secrets.token_urlsafe(12)
        owner = User.objects.filter(email=OWNER_EMAIL).first() or services.user_sign_up(
            email=OWNER_EMAIL, password=owner_password, name="Demo Owner"
        )
        User.objects.filter(pk=owner.pk, email_verified_at__isnull=True).update(email_verified_at=timezone.now())
        organization = services.organization_create(
            name="Demo Plant", slug=DEMO_SLUG, country="DE", region=region, created_by=owner
        )
        actor = Actor.for_member(organization=organization, user=owner, role=Role.OWNER)
        _, key = services.api_key_create(
            organization=organization, name="demo key", scopes=sorted(ALL_SCOPES), actor=actor
        )
        operator_password = secrets.token_urlsafe(12)
        if not User.objects.filter(email=OPERATOR_EMAIL).exists():
            User.objects.create_superuser(email=OPERATOR_EMAIL, password=operator_password, name="Operator")
        self.stdout.write(
            "\nDemo organisation created. These secrets are shown once:\n"
            f"  owner    {OWNER_EMAIL} / {owner_password}\n"
            f"  operator {OPERATOR_EMAIL} / {operator_password}   (Django admin)\n"
            f"  API key  {key}   (org '{DEMO_SLUG}', all scopes)\n"
        )
