from importlib import import_module

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from . import data_protection  # its data for organisation export and erasure

        import_module(f"{self.name}.data_export")  # registers the organisation export job kind
        import_module(f"{self.name}.tasks")  # registers the periodic maintenance tasks

        data_protection.register()
