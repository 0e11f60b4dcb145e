"""Pure conversions between OpenAI Chat Completions and the router's protobuf messages.

The HTTP door turns a request body into the same `CompleteRequest` / `CompleteStreamRequest`
the gRPC door receives (`to_router_request`), hands it to the same `Router`, and turns what the
Router answers back into OpenAI's shapes (`completion_body`, the `*_chunk` functions), adding
the `switchyard` object: request id, decision, per-hop cost and latency, total cost. Errors
become OpenAI's error JSON with the HTTP status from `switchyard.runtime.http_errors`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from pydantic import ValidationError

from switchyard.api.inference.v1 import inference_pb2
from switchyard.api.router.v1 import router_pb2
from switchyard.router.conversion import task_type_name
from switchyard.router.openai.schema import ChatCompletionRequest, UnsupportedField
from switchyard.runtime.errors import (
    BudgetExceeded,
    InvalidArgument,
    NotFound,
    SwitchyardError,
    Unauthenticated,
)
from switchyard.runtime.http_errors import http_error

__all__ = [
    "ErrorReply",
    "ModelNames",
    "RequestRefused",
    "completion_body",
    "completion_id",
    "content_chunk",
    "cost_info",
    "decision_info",
    "error_body",
    "error_reply",
    "finish_chunk",
    "first_chunk",
    "http_only_error",
    "internal_error_reply",
    "model_list",
    "parse_request",
    "to_router_request",
    "usage_chunk",
    "usage_info",
]

_ROLE = {
    "system": inference_pb2.ROLE_SYSTEM,
    "developer": inference_pb2.ROLE_SYSTEM,
    "user": inference_pb2.ROLE_USER,
    "assistant": inference_pb2.ROLE_ASSISTANT,
}
_FINISH = {
    inference_pb2.FINISH_REASON_STOP: "stop",
    inference_pb2.FINISH_REASON_LENGTH: "length",
    inference_pb2.FINISH_REASON_CONTENT_FILTER: "content_filter",
    inference_pb2.FINISH_REASON_TOOL_CALLS: "tool_calls",
}
_OWNER = "switchyard"


class RequestRefused(InvalidArgument):
    """A request body the door refuses (400), naming the offending field as OpenAI's `param`."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class ModelNames:
    """What a request's `model` may name: the routed name, or one logical target (forced)."""

    routed: str
    targets: tuple[str, ...]


def _where(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("str", "list[", "function-")):  # union-member labels
            out += f".{part}" if out else str(part)
    return out


def parse_request(body: bytes) -> ChatCompletionRequest:
    """Validate a request body; `RequestRefused` says what is wrong and where."""
    try:
        return ChatCompletionRequest.model_validate_json(body)
    except UnsupportedField as refused:
        raise RequestRefused(str(refused), refused.field) from None
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = _where(first["loc"])
        if first["type"] == "json_invalid":
            raise RequestRefused(f"the body is not valid JSON: {first['msg']}") from None
        if first["type"] == "model_type" and not where:
            raise RequestRefused("the body must be a JSON object") from None
        if first["type"] == "extra_forbidden":
            message = f"unrecognized request argument supplied: {where}"
        else:
            message = f"{where or 'body'}: {first['msg']}"
        more = error.error_count() - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise RequestRefused(message, where or None) from None


def _routing(request: ChatCompletionRequest, names: ModelNames) -> router_pb2.RoutingOptions:
    options = router_pb2.RoutingOptions()
    if request.model != names.routed:
        if request.model not in names.targets:
            raise NotFound(
                f"the model {request.model!r} does not exist; use {names.routed!r} (routed) or "
                f"one of the targets {list(names.targets)} (forced)"
            )
        options.force_target = request.model
    ext = request.switchyard
    if ext is not None:
        if ext.escalation_threshold is not None:
            options.escalation_threshold = ext.escalation_threshold
        if ext.max_cost_usd is not None:
            options.max_cost_usd = ext.max_cost_usd
        options.disallow_frontier = ext.disallow_frontier
    return options


def _messages(request: ChatCompletionRequest) -> list[inference_pb2.ChatMessage]:
    return [
        inference_pb2.ChatMessage(
            role=_ROLE[m.role],
            content=m.content
            if isinstance(m.content, str)
            else "\n".join(p.text for p in m.content),
        )
        for m in request.messages
    ]


def _parameters(request: ChatCompletionRequest) -> inference_pb2.GenerationParameters:
    params = inference_pb2.GenerationParameters()
    max_tokens = (
        request.max_completion_tokens
        if request.max_completion_tokens is not None
        else request.max_tokens
    )
    if max_tokens is not None:
        params.max_tokens = max_tokens
    if request.temperature is not None:
        params.temperature = request.temperature
    if request.top_p is not None:
        params.top_p = request.top_p
    if request.seed is not None:
        params.seed = request.seed
    if request.stop is not None:
        params.stop.extend([request.stop] if isinstance(request.stop, str) else request.stop)
    return params


def to_router_request(
    request: ChatCompletionRequest, names: ModelNames
) -> router_pb2.CompleteRequest | router_pb2.CompleteStreamRequest:
    """The router request for `request` (NotFound when `model` names nothing known)."""
    routing = _routing(request, names)
    kind = router_pb2.CompleteStreamRequest if request.stream else router_pb2.CompleteRequest
    return kind(messages=_messages(request), parameters=_parameters(request), routing=routing)


# ---- responses -------------------------------------------------------------------------------


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix)
    except ValueError:
        return "UNSPECIFIED"


def decision_info(decision: router_pb2.RoutingDecision) -> dict[str, Any]:
    """The `switchyard.decision` object."""
    classified = decision.HasField("classification")
    return {
        "target": decision.target,
        "target_kind": _enum_name(router_pb2.TargetKind, decision.target_kind, "TARGET_KIND_"),
        "backend": decision.backend,
        "model": decision.model,
        "reason": _enum_name(router_pb2.DecisionReason, decision.reason, "DECISION_REASON_"),
        "reason_detail": decision.reason_detail,
        "escalation_score": decision.escalation_score,
        "escalation_threshold": decision.escalation_threshold,
        "estimated_cost_usd": decision.estimated_cost_usd,
        "task_type": task_type_name(decision.classification.task_type) if classified else "",
        "complexity": decision.classification.complexity_score if classified else None,
    }


def cost_info(cost: router_pb2.CostBreakdown) -> dict[str, Any]:
    """The `switchyard` cost fields: every hop in order, then the totals."""
    return {
        "hops": [
            {
                "kind": _enum_name(router_pb2.HopKind, h.kind, "HOP_KIND_"),
                "service": h.service,
                "target": h.target,
                "model": h.model,
                "status": h.status,
                "latency_ms": h.latency_ms,
                "cost_usd": h.cost_usd,
                "input_tokens": h.input_tokens,
                "output_tokens": h.output_tokens,
            }
            for h in cost.hops
        ],
        "total_cost_usd": cost.total_cost_usd,
        "total_latency_ms": cost.total_latency_ms,
    }


def usage_info(usage: inference_pb2.Usage) -> dict[str, Any]:
    """OpenAI's usage object, plus `cost_usd` (what the router billed for the answer)."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "cost_usd": usage.cost_usd,
    }


def _model(decision: router_pb2.RoutingDecision) -> str:
    return decision.model or decision.target


def completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id}"


def completion_body(response: router_pb2.CompleteResponse, created: int) -> dict[str, Any]:
    """A `chat.completion` object for the Router's answer."""
    message: dict[str, Any] = {"role": "assistant", "content": response.text}
    if response.reasoning_text:
        message["reasoning_content"] = response.reasoning_text
    return {
        "id": completion_id(response.request_id),
        "object": "chat.completion",
        "created": created,
        "model": _model(response.decision),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _FINISH.get(response.finish_reason, "stop"),
                "logprobs": None,
            }
        ],
        "usage": usage_info(response.usage),
        "switchyard": {
            "request_id": response.request_id,
            "decision": decision_info(response.decision),
            **cost_info(response.cost),
        },
    }


def _chunk(
    request_id: str, created: int, model: str, choices: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": completion_id(request_id),
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }


def first_chunk(
    request_id: str, created: int, decision: router_pb2.RoutingDecision
) -> dict[str, Any]:
    """The stream's first event: the assistant role, and the decision (before any text)."""
    body = _chunk(
        request_id,
        created,
        _model(decision),
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
    )
    body["switchyard"] = {"request_id": request_id, "decision": decision_info(decision)}
    return body


def content_chunk(
    request_id: str, created: int, model: str, delta: inference_pb2.TextDelta
) -> dict[str, Any]:
    """One text delta."""
    part: dict[str, Any] = {}
    if delta.text:
        part["content"] = delta.text
    if delta.reasoning_text:
        part["reasoning_content"] = delta.reasoning_text
    return _chunk(request_id, created, model, [{"index": 0, "delta": part, "finish_reason": None}])


def _summary_info(summary: router_pb2.CompleteStreamSummary) -> dict[str, Any]:
    return {
        "request_id": summary.request_id,
        "decision": decision_info(summary.decision),
        **cost_info(summary.cost),
    }


def finish_chunk(
    created: int, summary: router_pb2.CompleteStreamSummary, *, last: bool
) -> dict[str, Any]:
    """The finish reason; when it is the stream's last event, with the cost (`switchyard`)."""
    body = _chunk(
        summary.request_id,
        created,
        _model(summary.decision),
        [{"index": 0, "delta": {}, "finish_reason": _FINISH.get(summary.finish_reason, "stop")}],
    )
    if last:
        body["switchyard"] = _summary_info(summary)
    return body


def usage_chunk(created: int, summary: router_pb2.CompleteStreamSummary) -> dict[str, Any]:
    """`stream_options.include_usage`: the last event, no choices, usage and the cost."""
    body = _chunk(summary.request_id, created, _model(summary.decision), [])
    body["usage"] = usage_info(summary.usage)
    body["switchyard"] = _summary_info(summary)
    return body


def model_list(names: ModelNames, created: int = 0) -> dict[str, Any]:
    """`GET /v1/models`: the routed name first, then every logical target."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": created, "owned_by": _OWNER}
            for name in (names.routed, *names.targets)
        ],
    }


# ---- errors ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error as the door sends it: HTTP status, OpenAI error JSON, extra headers."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


def error_body(message: str, kind: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_reply(error: SwitchyardError) -> ErrorReply:
    """The HTTP status and body for a Switchyard error (`switchyard.runtime.http_errors`)."""
    mapped = http_error(error.code)
    kind, code = mapped.type, None
    headers: tuple[tuple[str, str], ...] = ()
    param = error.param if isinstance(error, RequestRefused) else None
    if isinstance(error, BudgetExceeded):
        # Not worth retrying: the SDKs honour `x-should-retry: false` on a 429.
        kind = code = "insufficient_quota"
        headers = (("x-should-retry", "false"),)
    elif isinstance(error, Unauthenticated):
        code = "invalid_api_key"
    elif isinstance(error, NotFound):
        code = "model_not_found"
        param = "model"
    elif error.code is grpc.StatusCode.UNAVAILABLE:
        code = "backend_unavailable"
    return ErrorReply(mapped.status, error_body(error.message, kind, param, code), headers)


def internal_error_reply(trace_id: str) -> ErrorReply:
    """Anything unexpected: 500 with the trace id to look the logged traceback up by."""
    return ErrorReply(
        500, error_body(f"internal error (trace id {trace_id})", "server_error", None, None)
    )


def http_only_error(status: int, message: str) -> ErrorReply:
    """Failures with no gRPC code: 404 path, 405 method, 413 body too large."""
    return ErrorReply(status, error_body(message, "invalid_request_error", None, None))
