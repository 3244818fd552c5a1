"""OpenAI's error shape, so the official SDKs raise their usual exceptions."""

import json


def openai_error(
    message: str,
    *,
    type: str = "invalid_request_error",  # noqa: A002  (OpenAI's field name)
    param: str | None = None,
    code: str | None = None,
) -> dict[str, dict[str, str | None]]:
    """The one place OpenAI's error body is built, for the gateway and the /v1 API views alike."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        return json.dumps(openai_error(self.message, type=self.type, param=self.param, code=self.code)).encode()


def invalid_key(message: str = "Incorrect API key provided.") -> GatewayError:
    return GatewayError(401, message, code="invalid_api_key")


def bad_request(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param)


def model_not_found(model: str) -> GatewayError:
    return GatewayError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def no_capacity(message: str) -> GatewayError:
    return GatewayError(503, message, type="server_error", code="no_capacity")


def service_unavailable(retry_after_s: int = 5) -> GatewayError:
    """A dependency (Redis: rate limits and quotas) is away for now; retry after a few seconds."""
    return GatewayError(
        503,
        "The service is temporarily unavailable; retry shortly.",
        type="server_error",
        code="service_unavailable",
        headers={"Retry-After": str(retry_after_s)},
    )
