"""Settings shared by every environment. Configuration comes only from the environment (django-environ).

`controlplane` is the project package: the design card called it `platform/`, but that name shadows the
standard-library module `platform` (uuid, and so Django, then fails to import).
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

# Required in production (see production.py); local runs and tests fall back to a throwaway key.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
]
LOCAL_APPS = [
    "tenants",
    "jobs",
    "billing",
    "inference",
    "automation.scheduling",
    "automation.maintenance",
    "automation.quality",
    "assistant",
    "portal",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    # Probes and /metrics first: the kubelet and Prometheus call with the pod IP as Host, over plain HTTP.
    "controlplane.observability.ProbeMiddleware",
    "controlplane.observability.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "foundation.api.limits.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "foundation.api.throttling.RateLimitHeadersMiddleware",
    "foundation.api.idempotency.IdempotencyMiddleware",
    "portal.middleware.UserLanguageMiddleware",
    "portal.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
ASGI_APPLICATION = "controlplane.asgi.application"
WSGI_APPLICATION = "controlplane.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# No SQLite branch: PostgreSQL everywhere. `python -m controlplane.embedded` sets DATABASE_URL to an embedded
# PostgreSQL when none is configured.
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "lo",
    }
}

AUTH_USER_MODEL = "tenants.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = 60 * 60 * 2

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ko", "Korean"), ("de", "German")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
USE_THOUSAND_SEPARATOR = True  # numbers in pages as the reader's locale writes them (1,234.5 / 1.234,5)

LANGUAGE_COOKIE_AGE = 60 * 60 * 24 * 365
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"

STATIC_URL = "/static/"
STATIC_ROOT: Path | None = BASE_DIR / "staticfiles"  # None where nothing is collected (local, test)
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".cache" / "media")
# The artifact store (foundation.storage): adapters, training files, checkpoints. A directory by default (embedded
# runs, or a volume every pod mounts); production.py switches it and the media store to S3 when a bucket is set.
ARTIFACT_ROOT = env.path("ARTIFACT_ROOT", default=BASE_DIR / ".cache" / "artifacts")
STORAGES = {
    # A write that fails (a full disk) leaves no partial file (foundation.storage).
    "default": {"BACKEND": "foundation.storage.AtomicFileSystemStorage"},
    "artifacts": {
        "BACKEND": "foundation.storage.AtomicFileSystemStorage",
        "OPTIONS": {"location": str(ARTIFACT_ROOT)},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Lightsout <no-reply@lightsout.example>")
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")

# Sessions expire: a shop-floor terminal left signed in should not stay so for weeks.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 12)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the portal's htmx reads it to send X-CSRFToken

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiKeyAuthentication",
        "tenants.authentication.UserTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["foundation.api.throttling.CallerRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "foundation.api.pagination.CreatedCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "foundation.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Which proxies may tell us the client's address in X-Forwarded-For (foundation.client_address, docs/security.md):
# the networks the ingress connects from, and how many proxies append to the header. Neither set: the header is
# ignored and the socket peer is the client.
TRUSTED_PROXY_NETWORKS = env.list("TRUSTED_PROXY_NETWORKS", default=[])
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=0)
# Unknown API keys or user tokens per client address a minute (each costs a database lookup), then 429.
API_FAILED_CREDENTIALS_PER_MINUTE = env.int("API_FAILED_CREDENTIALS_PER_MINUTE", default=120)
# A POST with an Idempotency-Key answers the same for this long (foundation.api.idempotency).
IDEMPOTENCY_TTL_SECONDS = env.int("IDEMPOTENCY_TTL_SECONDS", default=60 * 60 * 24)
# Requests per minute for one caller (an API key, a user token or a signed-in user).
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=600)

SPECTACULAR_SETTINGS = {
    "TITLE": "Lightsout API",
    "DESCRIPTION": "Control plane of Lightsout: organisations, members, API keys, jobs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets whose field names collide with another app's get names of their own.
    "ENUM_NAME_OVERRIDES": {
        "QualityInvestigationStatusEnum": "automation.quality.models.Investigation.Status",
        "QualityContainmentStatusEnum": "automation.quality.models.ContainmentAction.Status",
        "QualityCorrectiveStatusEnum": "automation.quality.models.CorrectiveAction.Status",
        "QualityReportStatusEnum": "automation.quality.models.Report8D.Status",
        "QualityWebhookEventsEnum": "automation.quality.webhooks.EVENTS",
        # Maintenance's keep the names they had before quality's webhooks and alarms (same value sets) existed.
        "WorkOrderStatusEnum": "automation.maintenance.models.WorkOrder.Status",
        "EventsEnum": "automation.maintenance.conf.WEBHOOK_EVENTS",
        "WebhookDeliveryStatusEnum": "automation.maintenance.models.WebhookDelivery.Status",
        # A member's role keeps its name; a copilot message's role (user, assistant) gets its own.
        "RoleEnum": "tenants.roles.Role",
        "MessageRoleEnum": "assistant.models.Message.Role",
        # A capture's file format: one enum for the single and the batch upload (telemetry's import has its own).
        "CaptureFormatEnum": "automation.maintenance.vibration.FORMATS",
    },
}

# Celery: JSON only, acks late so a killed worker's task is delivered again, a time limit on everything.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60 * 10)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=60 * 11)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A message not acknowledged within this long is delivered again. Jobs also carry a heartbeat, so a dead
# worker's job is re-queued by `jobs.requeue_stale` long before this; the duplicate delivery is then a no-op.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=60 * 60 * 6)}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Workers log through LOGGING above (JSON with request ids), not Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"

# Jobs: a running job's worker writes a heartbeat; one older than this is taken for dead and run again.
JOB_HEARTBEAT_SECONDS = env.int("JOB_HEARTBEAT_SECONDS", default=10)
JOB_STALE_AFTER_SECONDS = env.int("JOB_STALE_AFTER_SECONDS", default=90)
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=3)
# A job still queued after this long is sent to its queue again (its message may have been lost with a broker);
# then at most once per its age so far. A duplicate message is a no-op.
JOB_REDISPATCH_AFTER_SECONDS = env.int("JOB_REDISPATCH_AFTER_SECONDS", default=120)

INVITATION_TTL_HOURS = env.int("INVITATION_TTL_HOURS", default=72)

# Sign-in attempts (tenants.signin): the attempt that reaches this many failures within the window locks the
# account (or the client address) for the lock-out; every attempt is refused until it ends, the right one included.
SIGN_IN_MAX_FAILURES_PER_ACCOUNT = env.int("SIGN_IN_MAX_FAILURES_PER_ACCOUNT", default=10)
SIGN_IN_MAX_FAILURES_PER_ADDRESS = env.int("SIGN_IN_MAX_FAILURES_PER_ADDRESS", default=50)
SIGN_IN_FAILURE_WINDOW_SECONDS = env.int("SIGN_IN_FAILURE_WINDOW_SECONDS", default=15 * 60)
SIGN_IN_LOCKOUT_SECONDS = env.int("SIGN_IN_LOCKOUT_SECONDS", default=15 * 60)

# Logs: one JSON object per line with the request id (LOG_FORMAT=json, production's default), or plain text.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "foundation.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "foundation.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Periodic tasks expire after about 1.5 times their interval, so a backlog never runs them many times over.
CELERY_BEAT_SCHEDULE = {
    "jobs-requeue-stale": {"task": "jobs.requeue_stale", "schedule": 30.0, "options": {"expires": 45}},
    "inference-check-servers": {"task": "inference.check_servers", "schedule": 15.0, "options": {"expires": 20}},
}

# Inference: where base models and adapters live (a volume every vLLM server can read), and the gateway's limits.
MODEL_STORE = env.path("MODEL_STORE", default=BASE_DIR / ".cache" / "models")
ADAPTER_STORE = env.path("ADAPTER_STORE", default=BASE_DIR / ".cache" / "adapters")
GATEWAY_RATE_LIMIT_PER_MINUTE = env.int("GATEWAY_RATE_LIMIT_PER_MINUTE", default=6000)
# Entries per in-process cache (keys, routes, entitlements): a request can add one, so each is bounded (LRU + TTL).
GATEWAY_CACHE_MAX_ENTRIES = env.int("GATEWAY_CACHE_MAX_ENTRIES", default=10_000)
# Database lookups of keys a gateway process does not hold, per client address a minute (random-key floods).
GATEWAY_KEY_LOOKUPS_PER_MINUTE = env.int("GATEWAY_KEY_LOOKUPS_PER_MINUTE", default=120)
GATEWAY_UPSTREAM_TIMEOUT_S = env.float("GATEWAY_UPSTREAM_TIMEOUT_S", default=300.0)
# Tool calling: the tools go into every prompt, so their number and size are bounded (OpenAI allows 128 tools).
GATEWAY_MAX_TOOLS = env.int("GATEWAY_MAX_TOOLS", default=128)
GATEWAY_MAX_TOOLS_BYTES = env.int("GATEWAY_MAX_TOOLS_BYTES", default=64 * 1024)

# --- billing -------------------------------------------------------------------------------------------------
# Stripe through the official SDK; STRIPE_API_BASE points it at localstripe in tests and local runs.
STRIPE_API_KEY = env("STRIPE_API_KEY", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
# The portal's card form: Stripe.js from Stripe itself (PCI requires it; the one script not served by the app),
# or localstripe's stand-in in local runs and tests.
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="pk_test_local")
STRIPE_JS_URL = env("STRIPE_JS_URL", default="https://js.stripe.com/v3/")
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)
BILLING_DEFAULT_PLAN = env("BILLING_DEFAULT_PLAN", default="starter")
# An unpaid invoice leaves this many days before billing suspends the organisation.
BILLING_GRACE_DAYS = env.int("BILLING_GRACE_DAYS", default=7)
# A period is closed this long after it ended, so late usage lands in the ledger first.
BILLING_CLOSE_DELAY_SECONDS = env.int("BILLING_CLOSE_DELAY_SECONDS", default=60 * 60)
BILLING_CLOSE_FLUSH_SECONDS = env.int("BILLING_CLOSE_FLUSH_SECONDS", default=30)
BILLING_REDIS_PREFIX = env("BILLING_REDIS_PREFIX", default="billing")
# usage_record drops a repeated idempotency key within this window; the ledger's unique key catches the rest.
BILLING_USAGE_DEDUPE_SECONDS = env.int("BILLING_USAGE_DEDUPE_SECONDS", default=600)
BILLING_COUNTER_TTL_SECONDS = env.int("BILLING_COUNTER_TTL_SECONDS", default=100 * 24 * 60 * 60)
# Stream entries per flush transaction; an entry holds up to 200 events (billing.usage.CHUNK).
BILLING_FLUSH_BATCH_SIZE = env.int("BILLING_FLUSH_BATCH_SIZE", default=200)
# Entries a flusher took and did not acknowledge for this long are re-claimed by another (it died).
BILLING_FLUSH_CLAIM_IDLE_SECONDS = env.int("BILLING_FLUSH_CLAIM_IDLE_SECONDS", default=30)
BILLING_ENTITLEMENT_CACHE_SECONDS = env.int("BILLING_ENTITLEMENT_CACHE_SECONDS", default=5)
BILLING_RESERVATION_TTL_SECONDS = env.int("BILLING_RESERVATION_TTL_SECONDS", default=15 * 60)
CELERY_BEAT_SCHEDULE |= {
    "billing-ledger-flush": {
        "task": "billing.ledger_flush",
        "schedule": 2.0,
        "options": {"queue": "billing", "expires": 3},
    },
    "billing-close-ended-periods": {
        "task": "billing.close_ended_periods",
        "schedule": 60.0 * 60 * 24,
        "options": {"queue": "billing", "expires": 60 * 60 * 36},
    },
    "billing-suspend-overdue": {
        "task": "billing.suspend_overdue",
        "schedule": 60.0 * 60,
        "options": {"queue": "billing", "expires": 60 * 90},
    },
    "billing-reconcile": {
        "task": "billing.reconcile",
        "schedule": 60.0 * 60 * 24,
        "options": {"queue": "billing", "expires": 60 * 60 * 36},
    },
}

# Fine-tuning: where files and runs live, and the limits a training file must meet.
TRAINING_STORE = env.path("TRAINING_STORE", default=BASE_DIR / ".cache" / "training")
# The copilot's documents: the largest upload accepted (413 above it) and the most hits one search returns.
ASSISTANT_MAX_UPLOAD_BYTES = env.int("ASSISTANT_MAX_UPLOAD_BYTES", default=20 * 1024 * 1024)
ASSISTANT_SEARCH_MAX_K = env.int("ASSISTANT_SEARCH_MAX_K", default=50)
# The copilot's prose: the tenant's model on the OpenAI-compatible gateway (default PUBLIC_BASE_URL).
ASSISTANT_MODEL = env("ASSISTANT_MODEL", default="smollm2-135m-instruct")
ASSISTANT_GATEWAY_BASE_URL = env("ASSISTANT_GATEWAY_BASE_URL", default="")
ASSISTANT_MODEL_TIMEOUT_S = env.float("ASSISTANT_MODEL_TIMEOUT_S", default=30.0)
FINE_TUNE_MAX_FILE_BYTES = env.int("FINE_TUNE_MAX_FILE_BYTES", default=100 * 1024 * 1024)

# Outbound calls to tenants' URLs (foundation.outbound): private, loopback, link-local and metadata addresses, and
# plain http, only where this is set (local runs, tests).
OUTBOUND_ALLOW_PRIVATE_HOSTS = env.bool("OUTBOUND_ALLOW_PRIVATE_HOSTS", default=False)

# Request bodies (foundation.api.limits): 413 in the error shape past these, before anything is stored. Uploads
# (multipart) may be as large as the largest file an app accepts plus the form's overhead; every other body is
# small. Each app then applies its own per-file limit with a clear message.
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=10 * 1024 * 1024)
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=FINE_TUNE_MAX_FILE_BYTES + 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
FINE_TUNE_MIN_EXAMPLES = env.int("FINE_TUNE_MIN_EXAMPLES", default=10)
FINE_TUNE_MAX_TOKENS_PER_EXAMPLE = env.int("FINE_TUNE_MAX_TOKENS_PER_EXAMPLE", default=2048)
FINE_TUNE_MAX_TOTAL_TOKENS = env.int("FINE_TUNE_MAX_TOTAL_TOKENS", default=20_000_000)
FINE_TUNE_CHECKPOINT_EVERY_STEPS = env.int("FINE_TUNE_CHECKPOINT_EVERY_STEPS", default=10)
FINE_TUNE_EVAL_EVERY_STEPS = env.int("FINE_TUNE_EVAL_EVERY_STEPS", default=0)

# Production scheduling: CP-SAT threads per optimisation job (size workers x threads to the machine).
SCHEDULING_SOLVER_WORKERS = env.int("SCHEDULING_SOLVER_WORKERS", default=8)

# --- predictive maintenance ----------------------------------------------------------------------------------
# MQTT telemetry: `manage.py mqtt_ingest` subscribes to <prefix>/<org_slug>/assets/<asset_code>/telemetry.
MQTT_URL = env("MQTT_URL", default="mqtt://127.0.0.1:1883")
MAINTENANCE_MQTT_TOPIC_PREFIX = env("MAINTENANCE_MQTT_TOPIC_PREFIX", default="lightsout")
MAINTENANCE_MQTT_CLIENT_ID = env("MAINTENANCE_MQTT_CLIENT_ID", default="lightsout-telemetry-ingest")
# Several subscribers share the load through a shared subscription group (MQTT 5 / Mosquitto); empty: one.
MAINTENANCE_MQTT_SHARED_GROUP = env("MAINTENANCE_MQTT_SHARED_GROUP", default="")
# Explanations of recommendations go through the OpenAI-compatible gateway (default PUBLIC_BASE_URL).
MAINTENANCE_EXPLAINER_BASE_URL = env("MAINTENANCE_EXPLAINER_BASE_URL", default="")
MAINTENANCE_EXPLAINER_TIMEOUT_S = env.float("MAINTENANCE_EXPLAINER_TIMEOUT_S", default=60.0)
MAINTENANCE_EXPLAINER_RETRY_SECONDS = env.int("MAINTENANCE_EXPLAINER_RETRY_SECONDS", default=300)
MAINTENANCE_WEBHOOK_TIMEOUT_S = env.float("MAINTENANCE_WEBHOOK_TIMEOUT_S", default=10.0)
# Webhooks to private, loopback or link-local addresses (and plain http) only where this is set: local runs, tests.
MAINTENANCE_WEBHOOK_ALLOW_PRIVATE_HOSTS = env.bool("MAINTENANCE_WEBHOOK_ALLOW_PRIVATE_HOSTS", default=False)
MAINTENANCE_SCORE_INTERVAL_SECONDS = env.int("MAINTENANCE_SCORE_INTERVAL_SECONDS", default=60 * 60)
CELERY_BEAT_SCHEDULE |= {
    "maintenance-enqueue-scoring": {
        "task": "maintenance.enqueue_scoring",
        "schedule": float(MAINTENANCE_SCORE_INTERVAL_SECONDS),
        "options": {"queue": "maintenance", "expires": int(MAINTENANCE_SCORE_INTERVAL_SECONDS * 1.5)},
    },
    "maintenance-explain-pending": {
        "task": "maintenance.explain_pending",
        "schedule": 300.0,
        "options": {"queue": "maintenance", "expires": 450},
    },
}
# --- quality (automation/quality/README.md) ---------------------------------------------------------------------
# MQTT step records use MQTT_URL and MAINTENANCE_MQTT_TOPIC_PREFIX (one broker); their own client id and group.
QUALITY_MQTT_CLIENT_ID = env("QUALITY_MQTT_CLIENT_ID", default="lightsout-quality-ingest")
QUALITY_MQTT_SHARED_GROUP = env("QUALITY_MQTT_SHARED_GROUP", default="")
QUALITY_WEBHOOK_TIMEOUT_S = env.float("QUALITY_WEBHOOK_TIMEOUT_S", default=10.0)
QUALITY_WEBHOOK_ALLOW_PRIVATE_HOSTS = env.bool("QUALITY_WEBHOOK_ALLOW_PRIVATE_HOSTS", default=False)
# 8D reports are drafted through the gateway (default MAINTENANCE_EXPLAINER_BASE_URL, then PUBLIC_BASE_URL).
QUALITY_REPORT_BASE_URL = env("QUALITY_REPORT_BASE_URL", default="")
QUALITY_REPORT_MODEL = env("QUALITY_REPORT_MODEL", default="")
QUALITY_REPORT_TIMEOUT_S = env.float("QUALITY_REPORT_TIMEOUT_S", default=120.0)
QUALITY_REPORT_RETRY_SECONDS = env.int("QUALITY_REPORT_RETRY_SECONDS", default=300)
CELERY_BEAT_SCHEDULE |= {
    "quality-draft-pending-reports": {
        "task": "quality.draft_pending_reports",
        "schedule": 300.0,
        "options": {"queue": "quality", "expires": 450},
    },
}
# Output tokens reserved against the quota for a completion that names no max_tokens.
GATEWAY_DEFAULT_MAX_TOKENS = env.int("GATEWAY_DEFAULT_MAX_TOKENS", default=1024)

# --- data protection (tenants/data_protection.py, docs/data-protection.md) ------------------------------------
# Where export archives are written (one directory per organisation; erased with it).
DATA_EXPORT_STORE = env.path("DATA_EXPORT_STORE", default=BASE_DIR / ".cache" / "exports")
# Days an export archive stays downloadable after its job finished; then the retention job removes it (410).
DATA_EXPORT_ARCHIVE_DAYS = env.int("DATA_EXPORT_ARCHIVE_DAYS", default=7)
# Days between an owner's deletion request and the erasure, during which an operator can undo it.
ORGANIZATION_DELETION_GRACE_DAYS = env.int("ORGANIZATION_DELETION_GRACE_DAYS", default=14)
# Platform defaults per data kind (an organisation's owner may set its own); apps register the kinds they hold.
DATA_RETENTION_DAYS = {
    "telemetry": env.int("DATA_RETENTION_TELEMETRY_DAYS", default=365),
    "captures": env.int("DATA_RETENTION_CAPTURES_DAYS", default=180),
    "conversation_history": env.int("DATA_RETENTION_CONVERSATION_HISTORY_DAYS", default=90),
}
CELERY_BEAT_SCHEDULE |= {
    "tenants-finish-erasures": {
        "task": "tenants.finish_erasures",
        "schedule": 60.0 * 60,
        "options": {"expires": 60 * 90},
    },
    "tenants-enforce-retention": {
        "task": "tenants.enforce_retention",
        "schedule": 60.0 * 60 * 24,
        "options": {"expires": 60 * 60 * 36},
    },
}

# How long placement retries a vLLM server that does not have an adapter's files yet (its adapter-sync sidecar is
# still copying them from the artifact store).
ADAPTER_SYNC_WAIT_SECONDS = env.float("ADAPTER_SYNC_WAIT_SECONDS", default=30.0)

# --- observability -------------------------------------------------------------------------------------------
# /metrics needs this bearer token when set (the NetworkPolicy already limits it to Prometheus's namespace).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT", default="production")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
# OpenTelemetry traces over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT) when set; off by default.
OTEL_ENABLED = env.bool("OTEL_ENABLED", default=False)
OTEL_SERVICE_NAME = env("OTEL_SERVICE_NAME", default="lightsout")
