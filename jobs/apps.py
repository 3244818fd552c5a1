from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from . import (
            data_export,  # noqa: F401  (registers the organisation export job kind)
            data_protection,  # its data for organisation export and erasure
            tasks,  # noqa: F401  (registers the periodic maintenance tasks)
        )

        data_protection.register()
