"""The Celery app. Apps declare tasks with `shared_task` and never import this module."""

import os

from celery import Celery
from kombu import Queue as KombuQueue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings.local")

app = Celery("lightsout")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _declare_queues() -> None:
    from jobs.queues import Queue

    app.conf.task_queues = [KombuQueue(q.value) for q in Queue]


_declare_queues()
app.autodiscover_tasks()
