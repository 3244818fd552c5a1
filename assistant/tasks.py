"""The assistant's job kinds."""

from jobs.queues import Queue
from jobs.runner import JobContext, job_task

from .conf import EMBED_JOB_KIND, EMBED_TIME_LIMIT_S


@job_task(kind=EMBED_JOB_KIND, queue=Queue.DEFAULT, time_limit_s=EMBED_TIME_LIMIT_S)
def embed_document(ctx: JobContext) -> dict:
    from .services import document_embed

    return document_embed(ctx)
