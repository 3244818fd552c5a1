from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from . import schema, signals  # noqa: F401  (OpenAPI auth schemes, sign-in auditing)
