"""Limits of the scheduling API, and how many CP-SAT threads one run may use."""

import environ
from django.conf import settings

OPTIMIZE_JOB_KIND = "scheduling.optimize"
MAX_TIME_LIMIT_S = 3600  # per run; the job kind's own limit adds room for building and recording
DEFAULT_TIME_LIMIT_S = 60
DEFAULT_HORIZON_DAYS = 28
MAX_HORIZON_DAYS = 366
MAX_IMPORT_ROWS = 20_000  # one import is one transaction; bigger files go in several imports
MAX_IMPORT_BYTES = 16 * 2**20  # per uploaded file
MAX_JOBSHOP_OPERATIONS = 100_000


def solver_workers() -> int:
    """CP-SAT search threads per run: a deployment setting, the same for every tenant. The engine's neighbourhood
    search runs in one more thread beside them.

    Read from settings when `controlplane.settings` defines SCHEDULING_SOLVER_WORKERS, else from the
    environment, so a worker started with the variable set uses it either way.
    """
    configured = getattr(settings, "SCHEDULING_SOLVER_WORKERS", None)
    if configured is not None:
        return int(configured)
    return environ.Env().int("SCHEDULING_SOLVER_WORKERS", default=8)
