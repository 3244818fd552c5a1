"""The job kind the scale-out kill drill runs (workers load it with `--include benchmarks._scale_out_jobs`): a few
short steps with heartbeats. Each run marks in Redis that it started (per job) and which job the worker process is
running now (per pid: the drill's workers use the solo pool, so the job runs in the worker's own process), so the
drill can kill a worker that holds a running job; each run to completion adds one mark, so the drill can count
executions and runs to completion per job."""

import os
import time

from foundation.redis import get_redis
from jobs.queues import Queue
from jobs.runner import JobContext, job_task

COMPLETIONS_KEY = "bench:scale_out:completions"
STARTS_KEY = "bench:scale_out:starts"
RUNNING_KEY = "bench:scale_out:running"


@job_task(kind="bench.scale_out", queue=Queue.DEFAULT, time_limit_s=120)
def scale_out_job(ctx: JobContext) -> dict:
    redis, job_id, pid = get_redis(), str(ctx.job.id), str(os.getpid())
    redis.hincrby(STARTS_KEY, job_id, 1)
    redis.hset(RUNNING_KEY, pid, job_id)
    steps = int(ctx.params.get("steps", 4))
    for step in range(steps):
        ctx.raise_if_cancelled()
        time.sleep(float(ctx.params.get("step_seconds", 0.5)))
        ctx.progress((step + 1) * 100 / steps)
    redis.hdel(RUNNING_KEY, pid)
    redis.hincrby(COMPLETIONS_KEY, job_id, 1)
    return {"steps": steps}
