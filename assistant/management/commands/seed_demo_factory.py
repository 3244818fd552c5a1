"""`manage.py seed_demo_factory --org SLUG`: the copilot's demo factory (see assistant.demo) in an organisation."""

import json

from django.core.management.base import BaseCommand, CommandError

from assistant.demo import demo_factory_seed
from tenants.actor import Actor
from tenants.models import Organization


class Command(BaseCommand):
    help = "Seed the copilot's demo factory (presses, machines and a plan, a traced defect, a manual) into an org."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organisation's slug; it must not hold the demo yet.")
        parser.add_argument("--no-documents", action="store_true", help="Skip the manual (no embedding).")

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"No organisation with the slug {options['org']!r}.")
        seeded = demo_factory_seed(
            organization=organization,
            actor=Actor.system(organization=organization),
            with_documents=not options["no_documents"],
        )
        self.stdout.write(json.dumps(seeded, indent=2))
