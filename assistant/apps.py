from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "assistant"
    label = "assistant"
    verbose_name = "Factory copilot"

    def ready(self) -> None:
        # Registers the embedding job kind in every process, so the web can create such jobs.
        from . import tasks  # noqa: F401
