"""Job kinds, limits and deployment settings of predictive maintenance."""

from django.conf import settings

TRAIN_JOB_KIND = "maintenance.train"
SCORE_JOB_KIND = "maintenance.score"
METER = "maintenance.model_runs"
CAPTURES_METER = "maintenance.captures"
VIBRATION_ANALYSE_JOB_KIND = "maintenance.vibration_analyse"
VIBRATION_ANALYSE_TIME_LIMIT_S = 5 * 60
VIBRATION_TRAIN_JOB_KIND = "maintenance.vibration_train"
VIBRATION_TRAIN_TIME_LIMIT_S = 30 * 60
LEARNED_MIN_PROBABILITY = 0.6
DEFAULT_EXPLAINER_MODEL = "smollm2-135m-instruct"
DEFAULT_RUL_CAP = 125.0
TRAIN_TIME_LIMIT_S = 60 * 60
SCORE_TIME_LIMIT_S = 30 * 60

MAX_READINGS_PER_REQUEST = 200_000  # one request is one transaction; bigger batches go in several
MAX_UPLOAD_BYTES = 64 * 2**20
MAX_BATCH_CAPTURES = 100  # per `POST captures/batch`: one transaction and one analysis job
MAX_ERRORS = 100  # reported per rejected batch; the count says how many there were in all
MAX_FUTURE_SKEW_S = 300  # readings stamped further ahead than this are rejected (a device clock gone wrong)
EARLIEST_TIMESTAMP_YEAR = 1990

WEBHOOK_EVENTS = ("recommendation.created", "diagnosis.created")
MULTIVARIATE = "multivariate"
# Scoring turns a result into a recommendation (and a work order) from this priority up; lower ones are kept on
# the asset's health only, so a healthy fleet does not fill the work-order list.
RECOMMEND_FROM_PRIORITY = ("medium", "high", "urgent")


def setting(name: str, default):
    return getattr(settings, name, default)


def mqtt_url() -> str:
    return setting("MQTT_URL", "mqtt://127.0.0.1:1883")


def topic_prefix() -> str:
    return setting("MAINTENANCE_MQTT_TOPIC_PREFIX", "lightsout")


def explainer_base_url() -> str:
    return (setting("MAINTENANCE_EXPLAINER_BASE_URL", "") or setting("PUBLIC_BASE_URL", "")).rstrip("/")
