"""Keep a vLLM server's adapter directory filled from the artifact store (the vLLM pod's sidecar).

vLLM loads a LoRA adapter from a path on its own machine. In a cluster that machine is the vLLM pod, which shares
an emptyDir at ADAPTER_STORE with this sidecar: the sidecar fetches every adapter version of its base model from
the artifact store (S3) into that directory, so the control plane's `load_lora_adapter` call finds the files (it
retries a 404 while the sidecar catches up, see inference.placement). Nothing is read from a web pod's disk.
"""

import time

from django.core.management.base import BaseCommand

from inference.models import AdapterVersion
from inference.services import adapter_local_dir


class Command(BaseCommand):
    help = "Copy adapter versions of a base model from the artifact store into ADAPTER_STORE, then keep polling."

    def add_arguments(self, parser):
        parser.add_argument("--base-model", help="Only adapters of this base model (its name); default: all.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between passes.")
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")

    def handle(self, *args, base_model=None, interval=2.0, once=False, **options):
        seen: set[str] = set()
        while True:
            versions = AdapterVersion.objects.order_by("created_at")
            if base_model:
                versions = versions.filter(tenant_model__base_model__name=base_model)
            for version in versions.exclude(lora_name__in=seen).iterator():
                try:
                    adapter_local_dir(version=version)
                except FileNotFoundError:
                    self.stderr.write(f"{version.lora_name} is not in the artifact store (yet).")
                    continue
                seen.add(version.lora_name)
                self.stdout.write(f"{version.lora_name} ready at {version.path}")
            if once:
                return
            time.sleep(interval)
