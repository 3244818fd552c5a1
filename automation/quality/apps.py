from importlib import import_module

from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "automation.quality"
    label = "quality"
    verbose_name = "Quality analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import data_protection  # its data for organisation export and erasure

        # Registers the quality job kinds in every process, so the web can create such jobs.
        import_module(f"{self.name}.tasks")
        data_protection.register()
