"""The Celery app. Apps declare tasks with `shared_task` and never import this module.

Workers name their settings explicitly (DJANGO_SETTINGS_MODULE); nothing here sets a default, because this
module is imported with the `controlplane` package and a default would leak into every process that imports
it, the test runner's included.

The request id of whatever published a task (an API call, a gateway request) travels in the message's headers and
is the worker's request id while the task runs, so its JSON log lines carry the id of the call that started it.
"""

import contextlib

from celery import Celery, signals
from kombu import Queue as KombuQueue

app = Celery("lightsout")
app.config_from_object("django.conf:settings", namespace="CELERY")
REQUEST_ID_HEADER = "lightsout_request_id"


def _declare_queues() -> None:
    from jobs.queues import Queue

    app.conf.task_queues = [KombuQueue(q.value) for q in Queue]


_declare_queues()
app.autodiscover_tasks()


@signals.before_task_publish.connect
def _stamp_request_id(headers=None, **_):
    from foundation.logs import get_request_id

    request_id = get_request_id()
    if headers is not None and request_id and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id


_tokens: dict[str, object] = {}


@signals.task_prerun.connect
def _adopt_request_id(task_id=None, task=None, **_):
    from foundation.logs import new_request_id, set_request_id

    request_id = getattr(task.request, REQUEST_ID_HEADER, None) or (task.request.headers or {}).get(REQUEST_ID_HEADER)
    _tokens[task_id] = set_request_id(request_id or f"task-{task_id or new_request_id()}")


@signals.task_postrun.connect
def _drop_request_id(task_id=None, **_):
    from foundation.logs import reset_request_id

    token = _tokens.pop(task_id, None)
    if token is not None:
        with contextlib.suppress(ValueError):  # set in another context (a pool that switched threads)
            reset_request_id(token)


@signals.worker_init.connect
def _serve_worker_metrics(**_):
    import os

    port = os.environ.get("METRICS_PORT")
    if port:
        from controlplane.observability import start_worker_metrics_server

        start_worker_metrics_server(int(port))


@signals.worker_process_init.connect
@signals.worker_init.connect
def _init_reporting(**_):
    from controlplane.observability import init_error_reporting_and_tracing

    init_error_reporting_and_tracing()
