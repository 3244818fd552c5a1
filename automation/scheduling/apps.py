from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "automation.scheduling"
    label = "scheduling"
    verbose_name = "Production scheduling"
