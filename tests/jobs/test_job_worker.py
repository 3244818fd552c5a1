"""Jobs executed by real Celery workers against the real database and broker."""

import signal

import pytest

import tests.jobs.sample_jobs  # noqa: F401  (registers test.count in this process too)
from jobs import services
from jobs.models import Job
from tests import builders
from tests.workers import running_worker, start_worker, stop_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _job(org, **params) -> Job:
    return services.job_create(organization=org, kind="test.count", params=params, actor=builders.owner_actor(org))


def _reload(job: Job) -> Job:
    job.refresh_from_db()
    return job


def test_worker_runs_a_job_to_success_with_progress_and_events(org, tmp_path):
    """Catches a broken dispatch-on-commit, claim, progress or finish path."""
    with running_worker(log_path=tmp_path / "worker.log"):
        job = _job(org, steps=4)
        wait_until(lambda: _reload(job).is_finished, what="the job to finish")
    assert job.status == Job.Status.SUCCEEDED
    assert job.progress == 100 and job.result == {"counted": 4} and job.attempts == 1
    messages = list(job.events.values_list("message", flat=True))
    assert messages[0].startswith("Queued") and "step 4 of 4" in messages and messages[-1] == "Succeeded."


def test_a_failing_job_records_its_error_and_is_not_retried(org):
    """Catches a handler's refusal being swallowed, or retried as if the worker had died."""
    with running_worker():
        job = _job(org, fail=True)
        wait_until(lambda: _reload(job).is_finished, what="the job to fail")
    assert (job.status, job.error_code, job.error_message, job.attempts) == (
        Job.Status.FAILED,
        "asked_to_fail",
        "Asked to fail.",
        1,
    )


def test_cancelling_a_running_job_stops_it_and_keeps_its_partial_result(org):
    """Catches cancellation that never reaches the worker, or a cancelled job reported as succeeded."""
    with running_worker():
        job = _job(org, steps=200, step_seconds=0.05)
        wait_until(lambda: _reload(job).progress >= 2, what="the job to make progress")
        services.job_cancel(job=job, actor=builders.owner_actor(org))
        wait_until(lambda: _reload(job).is_finished, timeout=15, what="the job to stop")
    assert job.status == Job.Status.CANCELLED
    assert 0 < job.result["reached"] < 200


def test_a_worker_killed_mid_job_leaves_the_job_to_run_again_once(org, tmp_path):
    """SIGKILL a real worker mid-job: the job must neither vanish, stay running, nor finish twice."""
    doomed = start_worker(name="doomed", log_path=tmp_path / "doomed.log")
    try:
        job = _job(org, steps=40, step_seconds=0.1)
        wait_until(lambda: _reload(job).progress >= 10, what="the job to be half-way on the first worker")
    finally:
        stop_worker(doomed, sig=signal.SIGKILL)
    assert _reload(job).status == Job.Status.RUNNING  # the dead worker's claim is still on the row

    with running_worker(name="rescuer", log_path=tmp_path / "rescuer.log"):
        # What beat runs every 30 s: once the heartbeat is stale, the job goes back to its queue.
        wait_until(lambda: services.job_requeue_stale()["requeued"], timeout=30, what="the stale job to be re-queued")
        wait_until(lambda: _reload(job).is_finished, timeout=60, what="the re-run to finish")

    assert job.status == Job.Status.SUCCEEDED and job.attempts == 2
    assert job.result == {"counted": 40}
    assert job.events.filter(message="Succeeded.").count() == 1
    assert job.events.filter(message__startswith="Restarted (attempt 2)").count() == 1
    # The broker may also redeliver the original message later; the claim turns it away.
    assert services.job_claim(job_id=str(job.id), organization_id=str(org.id), worker="late") is None
