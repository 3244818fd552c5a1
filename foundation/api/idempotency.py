"""`Idempotency-Key` on every POST of the APIs (/api/v1 and the Django-served /v1), with Stripe's semantics.

A client that retries a POST after a timeout cannot know whether the first one ran. With an `Idempotency-Key`
header (any unique string, at most 255 characters; a UUID is customary):

- the first request runs and its answer is kept for `IDEMPOTENCY_TTL_SECONDS` (24 h);
- a repeat with the same key and the same request (method, path, body) gets that answer again, with
  `Idempotent-Replayed: true`, and nothing runs a second time;
- a repeat with the same key and another request is refused: 422 `idempotency_key_reused`;
- a repeat while the first is still running: 409 `idempotency_request_in_progress` (retry shortly).

Keys are scoped per caller (the credential in `Authorization`, or the signed-in user) and per organisation (the
`/api/v1/orgs/<slug>/` in the path; on /v1 the API key is the organisation's), so two callers never see each other's
answers. Answers that did no work are not kept, so a retry can succeed: server errors (5xx), 401, 403, 409 and 429.
Sign-in paths (/api/v1/auth/) take no key: they create nothing that a retry could duplicate.

One middleware does this for every view, so no view can forget it. Answers are kept in Redis; an API key created
with a key is replayed with its plaintext, exactly as the first answer showed it, and expires with the entry.
"""

import base64
import contextlib
import hashlib
import json
import re
from collections.abc import Callable
from typing import cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from foundation.redis import get_redis

from .errors import REDIS_UNAVAILABLE, SERVICE_RETRY_AFTER_S, error_body

HEADER = "Idempotency-Key"
PREFIXES = ("/api/v1/", "/v1/")
EXCLUDED_PREFIXES = ("/api/v1/auth/",)
# Answers that did no work, as Stripe counts them (a refused or invalid request, a conflict, a limit): a retry
# with the same key may still succeed, so they are not kept.
NOT_KEPT = frozenset({400, 401, 403, 409, 413, 415, 422, 429})
REPLAYED_HEADERS = ("Content-Type", "Location")
_ORG = re.compile(r"^/api/v1/orgs/([^/]+)")


def _caller(request: HttpRequest) -> str | None:
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    if authorization:
        return "auth:" + hashlib.sha256(authorization.encode()).hexdigest()
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


def _fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256(f"{request.method} {request.get_full_path()}\n".encode())
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("multipart/"):
        # The boundary differs between two sends of the same form: compare the fields and the files' bytes. DRF
        # reads request.POST / request.FILES afterwards (it supports middleware having parsed them).
        for name, values in sorted(request.POST.lists()):
            digest.update(json.dumps([name, values]).encode())
        for name, uploads in sorted(request.FILES.lists()):
            for upload in uploads:
                digest.update(json.dumps([name, upload.name, upload.size]).encode())
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
    else:
        digest.update(request.body)
    return digest.hexdigest()


def _refusal(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse(error_body(code=code, message=message), status=status)
    if status == 409:
        response["Retry-After"] = "1"
    return response


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        key = request.headers.get(HEADER)
        if (
            key is None
            or request.method != "POST"
            or not request.path.startswith(PREFIXES)
            or request.path.startswith(EXCLUDED_PREFIXES)
        ):
            return self.get_response(request)
        if not key or len(key) > 255:
            return _refusal(400, "invalid", f"{HEADER} must be 1 to 255 characters.")
        caller = _caller(request)
        if caller is None:
            return self.get_response(request)  # unauthenticated: the view answers 401; nothing to replay
        org = _ORG.match(request.path)
        scope = f"{caller}|{org.group(1) if org else ''}|{key}"
        redis_key = "idem:" + hashlib.sha256(scope.encode()).hexdigest()
        fingerprint = _fingerprint(request)
        ttl = settings.IDEMPOTENCY_TTL_SECONDS
        redis = get_redis()
        try:
            if not redis.set(redis_key, json.dumps({"state": "running", "fp": fingerprint}), nx=True, ex=ttl):
                return self._answer_repeat(cast(str | None, redis.get(redis_key)), fingerprint)  # decode_responses
        except REDIS_UNAVAILABLE:
            # Without Redis the promise "runs once" cannot be kept: refuse (503, retry) rather than risk running twice.
            refused = _refusal(503, "service_unavailable", "A backing service is unavailable; retry shortly.")
            refused["Retry-After"] = str(SERVICE_RETRY_AFTER_S)
            return refused
        try:
            response = self.get_response(request)
        except BaseException:
            with contextlib.suppress(*REDIS_UNAVAILABLE):
                redis.delete(redis_key)
            raise
        if (
            response.status_code >= 500
            or response.status_code in NOT_KEPT
            or not isinstance(response, HttpResponse)  # a streamed or file answer is not kept
        ):
            with contextlib.suppress(*REDIS_UNAVAILABLE):
                redis.delete(redis_key)
            return response
        kept = {
            "state": "done",
            "fp": fingerprint,
            "status": response.status_code,
            "headers": {h: response[h] for h in REPLAYED_HEADERS if response.has_header(h)},
            "body": base64.b64encode(response.content).decode(),
        }
        with contextlib.suppress(*REDIS_UNAVAILABLE):  # the work is done: answer it even if Redis just went away
            redis.set(redis_key, json.dumps(kept), ex=ttl)
        return response

    def _answer_repeat(self, raw: str | None, fingerprint: str) -> HttpResponse:
        entry = json.loads(raw) if raw else None
        if entry is None:  # expired between the two calls: rare; ask for a retry rather than run twice
            return _refusal(409, "idempotency_request_in_progress", "Retry the request.")
        if entry["fp"] != fingerprint:
            return _refusal(
                422,
                "idempotency_key_reused",
                f"This {HEADER} was used for a different request; use a new key for a new request.",
            )
        if entry["state"] != "done":
            return _refusal(
                409,
                "idempotency_request_in_progress",
                f"A request with this {HEADER} is still being processed; retry shortly.",
            )
        response = HttpResponse(base64.b64decode(entry["body"]), status=entry["status"])
        for name, value in entry["headers"].items():
            response[name] = value
        response["Idempotent-Replayed"] = "true"
        return response
