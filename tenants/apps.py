from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from . import data_sections, schema, signals, tasks  # noqa: F401  (OpenAPI auth schemes, sign-in auditing)

        data_sections.register()
