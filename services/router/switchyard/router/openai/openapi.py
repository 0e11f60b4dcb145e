"""The OpenAPI 3.1 document the door publishes at `GET /openapi.json`.

Built from the pydantic models of `schema` (so the document and the validation cannot drift),
with `model` listing the names the running configuration accepts, and every error status the
door answers with (the table in `switchyard.runtime.http_errors`).
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from pydantic.json_schema import models_json_schema

from switchyard.router.openai.conversion import ModelNames
from switchyard.router.openai.schema import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ErrorResponse,
    ModelList,
    ModelObject,
)
from switchyard.runtime.telemetry import switchyard_version

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"

#: Every error status the chat route answers with, and when.
CHAT_ERRORS: dict[str, str] = {
    "400": "Invalid body, a field the door cannot honour, or no target allowed",
    "401": "Missing or unknown API key",
    "404": "Unknown model",
    "413": "Body over the size limit",
    "429": "Tenant over a hard budget (`insufficient_quota`) or a backend's rate limit",
    "500": "Internal error (the message carries the trace id)",
    "503": "Every backend tried was unavailable",
    "504": "A backend did not answer in time",
}


@lru_cache(maxsize=1)
def _schemas() -> dict[str, Any]:
    _, schema = models_json_schema(
        [
            (ChatCompletionRequest, "validation"),
            (ChatCompletion, "serialization"),
            (ChatCompletionChunk, "serialization"),
            (ModelList, "serialization"),
            (ModelObject, "serialization"),
            (ErrorResponse, "serialization"),
        ],
        ref_template=_REF,
    )
    return dict(schema["$defs"])


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _errors(codes: dict[str, str]) -> dict[str, Any]:
    return {
        code: {
            "description": why,
            "content": {"application/json": {"schema": _ref("ErrorResponse")}},
        }
        for code, why in codes.items()
    }


def openapi_document(names: ModelNames) -> dict[str, Any]:
    """The document for a configuration whose models are `names`."""
    schemas = copy.deepcopy(_schemas())
    schemas["ChatCompletionRequest"]["properties"]["model"]["enum"] = [
        names.routed,
        *names.targets,
    ]
    auth_errors = {"401": CHAT_ERRORS["401"]}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Switchyard OpenAI-compatible front door",
            "version": switchyard_version(),
            "description": (
                "Chat Completions onto Switchyard's router: the same routing policy, budgets, "
                "ledger and traces as its gRPC RouterService. `model` is the routed name (the "
                "policy decides) or a logical target (forced); routing options ride in the "
                "`switchyard` object; every answer carries a `switchyard` object with the "
                "decision and per-hop cost."
            ),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/chat/completions": {
                "post": {
                    "operationId": "createChatCompletion",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("ChatCompletionRequest")}},
                    },
                    "responses": {
                        "200": {
                            "description": (
                                "A chat completion; with `stream: true`, Server-Sent Events of "
                                "ChatCompletionChunk objects ending with `data: [DONE]`"
                            ),
                            "headers": {
                                "x-switchyard-request-id": {"schema": {"type": "string"}},
                                "x-switchyard-target": {"schema": {"type": "string"}},
                            },
                            "content": {
                                "application/json": {"schema": _ref("ChatCompletion")},
                                "text/event-stream": {"schema": {"type": "string"}},
                            },
                        },
                        **_errors(CHAT_ERRORS),
                    },
                }
            },
            "/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "responses": {
                        "200": {
                            "description": "The routed name, then every logical target",
                            "content": {"application/json": {"schema": _ref("ModelList")}},
                        },
                        **_errors(auth_errors),
                    },
                }
            },
            "/v1/models/{model}": {
                "get": {
                    "operationId": "retrieveModel",
                    "parameters": [
                        {
                            "name": "model",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "One model",
                            "content": {"application/json": {"schema": _ref("ModelObject")}},
                        },
                        **_errors({**auth_errors, "404": "Unknown model"}),
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "security": [],
                    "responses": {
                        "200": {"description": "The router is SERVING"},
                        "503": {"description": "Starting or shutting down"},
                    },
                }
            },
        },
    }
