"""The Celery app. Apps declare tasks with `shared_task` and never import this module.

Workers name their settings explicitly (DJANGO_SETTINGS_MODULE); nothing here sets a default, because this
module is imported with the `controlplane` package and a default would leak into every process that imports
it, the test runner's included.
"""

from celery import Celery
from kombu import Queue as KombuQueue

app = Celery("lightsout")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _declare_queues() -> None:
    from jobs.queues import Queue

    app.conf.task_queues = [KombuQueue(q.value) for q in Queue]


_declare_queues()
app.autodiscover_tasks()
