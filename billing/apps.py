from importlib import import_module

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    label = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Registers the period-close job kind in every process, so the web and beat can create such jobs.
        from . import data_protection  # its data for organisation export and erasure

        import_module(f"{self.name}.tasks")

        data_protection.register()
