"""The OpenAPI 3.1 document of the OpenAI-compatible data plane (`/v1`), served at `/v1/openapi.json`.

Hand-written: the completion routes are a plain ASGI application (inference.gateway), outside DRF's schema
generation. It describes what the gateway promises rather than every field OpenAI defines: the request fields it
reads, the objects it answers with (extra fields allowed), and OpenAI's error shape for every error status.
Fuzzing (tests/fuzzing.py, benchmarks/fuzz_api.py) validates every answer against it.
"""

from django.http import JsonResponse

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def _errors(*statuses: int) -> dict:
    return {
        str(s): {"description": "OpenAI's error shape.", "content": {"application/json": {"schema": _ERROR}}}
        for s in statuses
    }


def _ok(schema: dict, status: int = 200, media_type: str = "application/json") -> dict:
    return {str(status): {"description": "Success.", "content": {media_type: {"schema": schema}}}}


_OBJECT = {"type": "object", "required": ["object"], "properties": {"object": {"type": "string"}}}
_LIST = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {"type": "object"}}},
}
_TOOL_CALL = {
    "type": "object",
    "required": ["id", "type", "function"],
    "properties": {
        "id": {"type": "string"},
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
        },
    },
}
_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "user", "assistant", "tool", "developer"]},
        "content": {"type": ["string", "null"]},
        "tool_calls": {"type": "array", "items": _TOOL_CALL, "description": "An assistant message's calls."},
        "tool_call_id": {"type": "string", "description": "The call a `tool` message answers."},
    },
}
_TOOLS = {
    "tools": {
        "type": "array",
        "minItems": 1,
        "maxItems": 128,
        "items": {
            "type": "object",
            "required": ["type", "function"],
            "properties": {
                "type": {"const": "function"},
                "function": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                        "description": {"type": "string"},
                        "parameters": {"type": "object", "description": "A JSON Schema describing an object."},
                        "strict": {"type": "boolean"},
                    },
                },
            },
        },
    },
    "tool_choice": {
        "oneOf": [
            {"type": "string", "enum": ["none", "auto", "required"]},
            {
                "type": "object",
                "required": ["type", "function"],
                "properties": {
                    "type": {"const": "function"},
                    "function": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                },
            },
        ],
        "description": '"auto" only for models listing it in /v1/models `capabilities.tool_choice`.',
    },
    "parallel_tool_calls": {"type": "boolean"},
}
_SAMPLING = {
    "max_tokens": {"type": ["integer", "null"], "minimum": 1},
    "max_completion_tokens": {"type": ["integer", "null"], "minimum": 1},
    "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
    "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    "n": {"type": ["integer", "null"], "minimum": 1, "maximum": 1},
    "stream": {"type": ["boolean", "null"]},
    "stop": {"type": ["string", "array", "null"], "items": {"type": "string"}},
    "seed": {"type": ["integer", "null"]},
    "user": {"type": "string"},
}
_COMPLETION_ERRORS = _errors(400, 401, 403, 404, 413, 429, 502, 503, 504)
_DJANGO_ERRORS = _errors(400, 401, 403, 404, 405, 409, 413, 429)
_ID = {"type": "string", "maxLength": 200}


def _path_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": _ID}


DOCUMENT: dict = {
    "openapi": "3.1.0",
    "info": {
        "title": "Lightsout OpenAI-compatible API",
        "version": "1.0.0",
        "description": "Chat and text completions, models, files and fine-tuning, in OpenAI's wire format. "
        "Authenticate with an organisation API key: `Authorization: Bearer lo_live_...`.",
    },
    "servers": [{"url": "/"}],
    "components": {"securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
    "security": [{"apiKey": []}],
    "paths": {
        "/v1/models": {
            "get": {
                "operationId": "models_list",
                "responses": {**_ok(_LIST), **_errors(401, 403, 429)},
            }
        },
        "/v1/chat/completions": {
            "post": {
                "operationId": "chat_completions_create",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["model", "messages"],
                                "properties": {
                                    "model": {"type": "string"},
                                    "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
                                    **_TOOLS,
                                    **_SAMPLING,
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "A chat completion, or server-sent events when `stream` is true.",
                        "content": {"application/json": {"schema": _OBJECT}, "text/event-stream": {"schema": {}}},
                    },
                    **_COMPLETION_ERRORS,
                },
            }
        },
        "/v1/completions": {
            "post": {
                "operationId": "completions_create",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["model", "prompt"],
                                "properties": {
                                    "model": {"type": "string"},
                                    "prompt": {"type": ["string", "array"], "items": {"type": "string"}},
                                    **_SAMPLING,
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "A text completion, or server-sent events when `stream` is true.",
                        "content": {"application/json": {"schema": _OBJECT}, "text/event-stream": {"schema": {}}},
                    },
                    **_COMPLETION_ERRORS,
                },
            }
        },
        "/v1/files": {
            "get": {"operationId": "files_list", "responses": {**_ok(_LIST), **_DJANGO_ERRORS}},
            "post": {
                "operationId": "files_create",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file", "purpose"],
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "purpose": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {**_ok(_OBJECT), **_ok(_OBJECT, 201), **_DJANGO_ERRORS},
            },
        },
        "/v1/files/{file_id}": {
            "parameters": [_path_param("file_id")],
            "get": {"operationId": "files_retrieve", "responses": {**_ok(_OBJECT), **_DJANGO_ERRORS}},
            "delete": {"operationId": "files_delete", "responses": {**_ok(_OBJECT), **_DJANGO_ERRORS}},
        },
        "/v1/files/{file_id}/content": {
            "parameters": [_path_param("file_id")],
            "get": {
                "operationId": "files_content",
                "responses": {**_ok({}, media_type="application/octet-stream"), **_DJANGO_ERRORS},
            },
        },
        "/v1/fine_tuning/jobs": {
            "get": {
                "operationId": "fine_tuning_jobs_list",
                "parameters": [
                    {"name": "after", "in": "query", "schema": _ID},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                ],
                "responses": {**_ok(_LIST), **_DJANGO_ERRORS},
            },
            "post": {
                "operationId": "fine_tuning_jobs_create",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["model", "training_file"],
                                "properties": {
                                    "model": {"type": "string"},
                                    "training_file": {"type": "string"},
                                    "validation_file": {"type": ["string", "null"]},
                                    "suffix": {"type": ["string", "null"], "maxLength": 64},
                                    "seed": {"type": ["integer", "null"]},
                                    "method": {"type": "object"},
                                    "hyperparameters": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                "responses": {**_ok(_OBJECT), **_ok(_OBJECT, 201), **_DJANGO_ERRORS},
            },
        },
        **{
            f"/v1/fine_tuning/jobs/{{job_id}}{suffix}": {
                "parameters": [_path_param("job_id")],
                method: {
                    "operationId": operation_id,
                    "responses": {**_ok(schema, media_type=media_type), **_DJANGO_ERRORS},
                },
            }
            for suffix, method, operation_id, schema, media_type in [
                ("", "get", "fine_tuning_jobs_retrieve", _OBJECT, "application/json"),
                ("/cancel", "post", "fine_tuning_jobs_cancel", _OBJECT, "application/json"),
                ("/events", "get", "fine_tuning_jobs_events", _LIST, "application/json"),
                ("/checkpoints", "get", "fine_tuning_jobs_checkpoints", _LIST, "application/json"),
                ("/export", "get", "fine_tuning_jobs_export", {}, "application/gzip"),
            ]
        },
    },
}


def openapi_document(request):
    return JsonResponse(DOCUMENT)
