# The Celery app is created with Django so that `shared_task` and `send_task` use it in every process.
from .celery import app as celery_app

__all__ = ("celery_app",)
