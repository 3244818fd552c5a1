"""A job kind used by the tests only: it counts to `steps`, one step every `step_seconds`, checking for cancel.

Workers started by the tests load it with `--include tests.jobs.sample_jobs`.
"""

import time

from jobs.queues import Queue
from jobs.runner import JobContext, JobFailure, job_task


@job_task(kind="test.count", queue=Queue.DEFAULT, time_limit_s=120)
def count(ctx: JobContext) -> dict:
    steps = int(ctx.params.get("steps", 3))
    if ctx.params.get("fail"):
        raise JobFailure("Asked to fail.", code="asked_to_fail")
    for step in range(1, steps + 1):
        ctx.raise_if_cancelled({"reached": step - 1})
        time.sleep(float(ctx.params.get("step_seconds", 0.01)))
        ctx.progress(step * 100 / steps, f"step {step} of {steps}", step=step)
    return {"counted": steps}
