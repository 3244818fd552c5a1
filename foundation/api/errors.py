"""One error shape for the whole control-plane API.

Every 4xx and 5xx answers `{"error": {"code": ..., "message": ..., "fields": {...}}}`; `fields` appears only for
validation errors and maps each field (or "non_field_errors") to its messages. Django's own ValidationError is
mapped too, so a model's `full_clean()` raised from a service reads like a serializer error.
"""

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast, overload

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from foundation.rejections import Rejected
from foundation.storage import storage_full

logger = logging.getLogger(__name__)

# A validation error's detail as the error shape carries it: messages, lists of them, and fields mapping to them.
Flattened = dict[str, "Flattened"] | Sequence["Flattened"] | str


class ApiError(exceptions.APIException):
    """A service-level refusal with its own code and status, e.g. `organization_suspended` (403)."""

    def __init__(self, message: str, *, code: str, status_code: int = status.HTTP_400_BAD_REQUEST):
        self.status_code = status_code
        super().__init__(detail=message, code=code)


def error_body(*, code: str, message: str, fields: Mapping[str, Flattened] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


@overload
def _flatten(detail: dict[Any, Any]) -> dict[str, Flattened]: ...
@overload
def _flatten(detail: object) -> Flattened: ...
def _flatten(detail: object) -> Flattened:
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [str(item) if not isinstance(item, dict | list) else _flatten(item) for item in detail]
    return str(detail)


def _from_django_validation_error(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError({k: [m for e in v for m in e.messages] for k, v in exc.error_dict.items()})
    return exceptions.ValidationError({"non_field_errors": exc.messages})


# Seconds a client should wait before retrying when the database is away (a restart or fail-over takes seconds).
DATABASE_RETRY_AFTER_S = 5


def database_unavailable_response() -> Response:
    """The database could not be reached or dropped the connection: a clean 503, not a crash. The transaction (if
    any) was rolled back by the database, so nothing is half-written; Django closes the broken connection when the
    request ends, and the next request connects afresh (no restart of the web process)."""
    response = Response(
        error_body(code="database_unavailable", message="The database is unavailable; retry shortly."),
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
    )
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


# Seconds a client should wait before retrying when Redis is away (a restart takes seconds).
SERVICE_RETRY_AFTER_S = 5
# Redis errors that mean "away for now" (restarting, loading its data, unreachable), not a bug of ours.
REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)


def service_unavailable_response() -> Response:
    """Redis (rate limits, quotas, usage, sign-in limits, idempotency) is away, e.g. restarting: a clean 503 that
    says when to retry. Nothing the request would have written to Redis was written; its database transaction, if
    any, is rolled back by the exception."""
    response = Response(
        error_body(code="service_unavailable", message="A backing service is unavailable; retry shortly."),
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
    )
    response["Retry-After"] = str(SERVICE_RETRY_AFTER_S)
    return response


def insufficient_storage_response() -> Response:
    """A disk or quota ran out while storing (an upload, or rows in PostgreSQL): 507, and nothing half-stored (the
    stores write beside the target and rename, the transaction is rolled back)."""
    return Response(
        error_body(
            code="insufficient_storage",
            message="There is no room to store this right now; nothing was stored. Retry later or contact support.",
        ),
        status=status.HTTP_507_INSUFFICIENT_STORAGE,
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if storage_full(exc):
        logger.error("Storage full in %s: %s", context.get("view"), exc)
        return insufficient_storage_response()
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("Database unavailable in %s: %s", context.get("view"), exc)
        return database_unavailable_response()
    if isinstance(exc, REDIS_UNAVAILABLE):
        logger.warning("Redis unavailable in %s: %s", context.get("view"), exc)
        return service_unavailable_response()
    if isinstance(exc, DataError):
        # Input the database cannot hold (a NUL character, a number beyond the column's range) that no validator
        # caught: the caller's mistake, so a 400, not a 500 (found by fuzzing: a NUL in a code looked up by value).
        exc = exceptions.ValidationError(
            {"non_field_errors": ["A value is out of range or holds characters that cannot be stored (such as NUL)."]}
        )
    elif isinstance(exc, DjangoValidationError):
        exc = _from_django_validation_error(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = ApiError(str(exc), code="request_too_large", status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)

    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view"), exc_info=exc)
        return Response(
            error_body(code="server_error", message="Internal server error."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        fields = _flatten(detail)
        first = next(iter(fields.values()))
        message = first[0] if isinstance(first, list) and first and isinstance(first[0], str) else "Invalid input."
        response.data = error_body(code="invalid", message=message, fields=fields)
    else:
        codes = exc.get_codes() if hasattr(exc, "get_codes") else "error"
        code = codes if isinstance(codes, str) else "error"
        # drf's handler answers only APIExceptions (Http404 and PermissionDenied were converted above)
        response.data = error_body(code=code, message=str(cast(exceptions.APIException, exc).detail))
    return response


def json_error_view(
    status_code: int, code: str, message: str, *, page_template: str | None = None
) -> Callable[..., HttpResponse]:
    """Django-level handlers (unknown URL, crash outside a view): the API's error shape for machine paths
    (/api/, /v1/), and `page_template` (an HTML page) for people in the portal."""

    def view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        if page_template and not request.path.startswith(("/api/", "/v1/")):
            from django.shortcuts import render

            return render(request, page_template, {"status": status_code, "message": message}, status=status_code)
        return JsonResponse(error_body(code=code, message=message), status=status_code)

    return view


def rejected_response(rejected: Rejected) -> Response:
    """A batch refused as a whole: 400 with every place's problems (`fields`), nothing stored."""
    return Response(
        error_body(code="invalid", message=str(rejected), fields=rejected.errors), status=status.HTTP_400_BAD_REQUEST
    )
