"""Job kinds: what each kind runs, on which queue, within which time limit.

Apps declare their kinds with `jobs.runner.job_task`; the registry lets the control plane dispatch, retry and
re-queue any job by its kind alone.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class JobKind:
    name: str
    queue: str
    task_name: str
    time_limit_s: int
    max_attempts: int = 3


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> None:
    existing = _KINDS.get(kind.name)
    if existing is not None and existing != kind:
        raise ValueError(f"Job kind {kind.name!r} is registered twice with different settings.")
    _KINDS[kind.name] = kind


def get(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise LookupError(f"Unknown job kind {name!r}.") from None
