from importlib import import_module

from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "assistant"
    label = "assistant"
    verbose_name = "Factory copilot"

    def ready(self) -> None:
        from . import data_protection  # its data for organisation export and erasure

        # Registers the embedding job kind in every process, so the web can create such jobs.
        import_module(f"{self.name}.tasks")
        data_protection.register()
