from importlib import import_module

from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "automation.scheduling"
    label = "scheduling"
    verbose_name = "Production scheduling"

    def ready(self) -> None:
        # Registers the optimisation job kind in every process, so the web can create such jobs.
        from . import data_protection  # its data for organisation export and erasure

        import_module(f"{self.name}.tasks")

        data_protection.register()
