"""`make run`: one machine, embedded services, mail to the console."""

from .base import *  # noqa: F403
from .base import STORAGES, env

SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-local-only-never-in-production")

DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# Serve static files straight from the apps, so a local run needs no collectstatic.
WHITENOISE_USE_FINDERS = True
# Integrators testing webhooks on one machine receive them on localhost.
MAINTENANCE_WEBHOOK_ALLOW_PRIVATE_HOSTS = env.bool("MAINTENANCE_WEBHOOK_ALLOW_PRIVATE_HOSTS", default=True)
STATIC_ROOT = None  # nothing is collected outside production
# Only the static files change: the media and artifact stores stay base's (a local run uploads and trains too).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
