from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "automation.quality"
    label = "quality"
    verbose_name = "Quality analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the quality job kinds in every process, so the web can create such jobs.
        from . import tasks  # noqa: F401
