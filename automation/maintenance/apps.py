from importlib import import_module

from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    name = "automation.maintenance"
    label = "maintenance"
    verbose_name = "Predictive maintenance"

    def ready(self) -> None:
        # Registers the maintenance job kinds in every process, so the web can create such jobs.
        from . import data_protection  # its data for organisation export and erasure

        import_module(f"{self.name}.tasks")

        data_protection.register()
