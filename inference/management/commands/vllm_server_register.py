"""Register a vLLM server (it must serve --base-model under that name, with runtime LoRA updating on)."""

from django.core.management.base import BaseCommand, CommandError

from inference.models import BaseModel
from inference.placement import server_check_health
from inference.services import server_register
from tenants.models import Region


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--url", required=True)
        parser.add_argument("--base-model", required=True)
        parser.add_argument("--cluster", required=True)
        parser.add_argument("--region", required=True, choices=Region.values)
        parser.add_argument("--max-loras", type=int, default=4)
        parser.add_argument("--max-cpu-loras", type=int, default=8)

    def handle(self, *args, url, base_model, cluster, region, max_loras, max_cpu_loras, **options):
        model = BaseModel.objects.filter(name=base_model).first()
        if model is None:
            raise CommandError(f"Unknown base model {base_model}; run provision_base_model first.")
        server = server_register(
            url=url,
            base_model=model,
            cluster_name=cluster,
            region=region,
            max_loras=max_loras,
            max_cpu_loras=max_cpu_loras,
        )
        healthy = server_check_health(server=server)
        self.stdout.write(f"Registered {server.url} ({'healthy' if healthy else 'DOWN'}) for {model.name}.")
