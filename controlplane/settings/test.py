"""pytest: real PostgreSQL and Redis (embedded when no URL is given), fast password hashing, local mail."""

from .base import *  # noqa: F403
from .base import STORAGES, env

SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-tests-only")

DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The portal's end-to-end server writes mail to files (the browser test reads the confirmation link there).
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=None)
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None  # nothing is collected outside production
# Tests use their own Redis database so they never see a local run's keys.
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=10_000)
JOB_HEARTBEAT_SECONDS = 1
JOB_STALE_AFTER_SECONDS = 4
ADAPTER_SYNC_WAIT_SECONDS = 1.0
