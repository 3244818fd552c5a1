"""Production: everything from the environment, HTTPS only, no debug. `manage.py check --deploy` is clean."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[f"https://{h}" for h in ALLOWED_HOSTS])

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
LANGUAGE_COOKIE_SECURE = True
LANGUAGE_COOKIE_SAMESITE = "Lax"

# Object storage (django-storages' S3 backend; any S3-compatible store through OBJECT_STORE_ENDPOINT_URL). Without
# a bucket the stores stay directories (ARTIFACT_ROOT, MEDIA_ROOT), which must then be one volume every pod mounts.
OBJECT_STORE_BUCKET = env("OBJECT_STORE_BUCKET", default="")
if OBJECT_STORE_BUCKET:
    _s3 = {
        "bucket_name": OBJECT_STORE_BUCKET,
        "endpoint_url": env("OBJECT_STORE_ENDPOINT_URL", default=None),
        "region_name": env("OBJECT_STORE_REGION", default=None),
        # Keys from the environment, or (unset) the pod's workload identity through boto3's credential chain.
        "access_key": env("OBJECT_STORE_ACCESS_KEY_ID", default=None),
        "secret_key": env("OBJECT_STORE_SECRET_ACCESS_KEY", default=None),
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": env.int("OBJECT_STORE_URL_EXPIRE_SECONDS", default=600),
        "file_overwrite": True,
    }
    STORAGES["default"] = {  # noqa: F405
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": _s3 | {"location": "media", "file_overwrite": False},
    }
    STORAGES["artifacts"] = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _s3 | {"location": "artifacts"}}  # noqa: F405

LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING["handlers"]["console"]["formatter"] = "json" if LOG_FORMAT == "json" else "plain"  # type: ignore[index]  # noqa: F405
