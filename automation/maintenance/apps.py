from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    name = "automation.maintenance"
    label = "maintenance"
    verbose_name = "Predictive maintenance"
