"""A job whose message the broker lost (restarted without its data, or away when the job was created) is sent again
by the periodic `job_requeue_stale`, once per period, not once per beat. Real broker (the test Redis), no worker:
the test reads the queue's length."""

from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone

import tests.jobs.sample_jobs  # noqa: F401  (registers test.count in this process too)
from jobs import services
from jobs.models import Job
from tests import builders

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = "default"


def _queued_messages() -> int:
    with current_app.connection_for_write() as connection:
        return connection.default_channel.queue_declare(queue=QUEUE, passive=True).message_count


def _purge() -> None:
    with current_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(QUEUE)


def test_a_queued_job_whose_message_was_lost_is_sent_again_once_per_period(org, settings):
    """Catches a job stuck `queued` for ever after a broker lost its message (the stale-job re-queue only looked at
    running jobs), or a re-send on every beat that would flood a long queue with duplicates."""
    settings.JOB_REDISPATCH_AFTER_SECONDS = 60
    _purge()
    job = services.job_create(organization=org, kind="test.count", params={}, actor=builders.owner_actor(org))
    assert _queued_messages() == 1
    _purge()  # the broker lost it

    assert services.job_requeue_stale()["redispatched"] == 0  # too young: its message may just be waiting
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=90))
    assert services.job_requeue_stale()["redispatched"] == 1
    assert _queued_messages() == 1
    assert services.job_requeue_stale()["redispatched"] == 0  # not again within the period
    assert _queued_messages() == 1
    _purge()
