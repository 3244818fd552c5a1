from enum import StrEnum


class Queue(StrEnum):
    """Celery queues. In production each has its own workers (GPU nodes take `training`)."""

    DEFAULT = "default"
    TRAINING = "training"
    OPTIMIZATION = "optimization"
    MAINTENANCE = "maintenance"
    QUALITY = "quality"
    BILLING = "billing"
