"""The job kind the scale-out kill drill runs (workers load it with `--include benchmarks._scale_out_jobs`): a few
short steps with heartbeats, then one mark in Redis per completed run, so the drill can count runs to completion."""

import time

from foundation.redis import get_redis
from jobs.queues import Queue
from jobs.runner import JobContext, job_task

COMPLETIONS_KEY = "bench:scale_out:completions"


@job_task(kind="bench.scale_out", queue=Queue.DEFAULT, time_limit_s=120)
def scale_out_job(ctx: JobContext) -> dict:
    steps = int(ctx.params.get("steps", 4))
    for step in range(steps):
        ctx.raise_if_cancelled()
        time.sleep(float(ctx.params.get("step_seconds", 0.5)))
        ctx.progress((step + 1) * 100 / steps)
    get_redis().hincrby(COMPLETIONS_KEY, str(ctx.job.id), 1)
    return {"steps": steps}
