from importlib import import_module

from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "inference"
    label = "inference"
    verbose_name = "Inference"

    def ready(self) -> None:
        from . import data_protection  # its data for organisation export and erasure

        import_module(f"{self.name}.tasks")  # registers the fine_tune job kind in every process

        data_protection.register()
