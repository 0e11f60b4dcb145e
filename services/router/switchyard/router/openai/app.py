"""The ASGI app of the OpenAI-compatible door: HTTP in, the same `Router` the gRPC door calls.

Thin on purpose: it reads the body (413 past the size limit), opens the request's SERVER span
(continuing the caller's W3C `traceparent`; the Router sets its decision, cost and `gen_ai.*`
attributes on it, as on the gRPC server span), authenticates the bearer key against the same
tenants, converts with `conversion`, awaits the Router and writes JSON or Server-Sent Events.

Routes: `POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{model}`,
`GET /openapi.json`, `GET /health` (200 while the router is SERVING, else 503; not traced).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, MutableMapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import pydantic_core
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace import StatusCode as SpanStatus

from switchyard.api.router.v1 import router_pb2
from switchyard.router.config import RouterConfig
from switchyard.router.openai.conversion import (
    ErrorReply,
    ModelNames,
    completion_body,
    content_chunk,
    error_reply,
    finish_chunk,
    first_chunk,
    http_only_error,
    internal_error_reply,
    model_list,
    parse_request,
    to_router_request,
    usage_chunk,
)
from switchyard.router.openai.openapi import openapi_document
from switchyard.router.routing import Router
from switchyard.router.tenancy import authenticate
from switchyard.runtime import attributes as attr
from switchyard.runtime.errors import NotFound, SwitchyardError
from switchyard.runtime.logging import get_logger
from switchyard.runtime.telemetry import get_tracer

__all__ = ["OpenAIDoor"]

log = get_logger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
OPENAPI_PATH = "/openapi.json"
HEALTH_PATH = "/health"

_JSON = (b"content-type", b"application/json")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_DONE = b"data: [DONE]\n\n"
HEADER_REQUEST_ID = "x-switchyard-request-id"
HEADER_TARGET = "x-switchyard-target"
HEADER_COST = "x-switchyard-cost-usd"


class _TooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


@dataclass
class _StreamState:
    completed: bool = False  # the last event is being sent: a disconnect now is the normal end
    gone: bool = False  # the client went away first


def _sse(body: dict[str, Any]) -> bytes:
    return b"data: " + pydantic_core.to_json(body) + b"\n\n"


async def _send_json(
    send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = body if isinstance(body, bytes) else pydantic_core.to_json(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", str(len(data)).encode()), *(headers or ())],
        }
    )
    await send({"type": "http.response.body", "body": data})


class OpenAIDoor:
    """The ASGI application (see the module docstring)."""

    def __init__(
        self,
        router: Router,
        config: Callable[[], RouterConfig],
        *,
        routed_model: str,
        max_request_bytes: int,
        serving: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._router = router
        self._config = config
        self._routed = routed_model
        self._max_bytes = max_request_bytes
        self._serving = serving
        self._clock = clock
        self._tracer = get_tracer(__name__)
        self._names_of: tuple[RouterConfig, ModelNames] | None = None

    def _names(self, config: RouterConfig) -> ModelNames:
        cached = self._names_of
        if cached is None or cached[0] is not config:
            cached = (config, ModelNames(self._routed, tuple(config.targets)))
            self._names_of = cached
        return cached[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == CHAT_PATH:
            if method != "POST":
                await self._error(send, http_only_error(405, f"{method} {path}: use POST"))
                return
            await self._traced(scope, receive, send, attr.SPAN_ROUTER_HTTP_CHAT_COMPLETIONS)
        elif path == MODELS_PATH or path.startswith(MODELS_PATH + "/"):
            if method != "GET":
                await self._error(send, http_only_error(405, f"{method} {path}: use GET"))
                return
            await self._traced(scope, receive, send, attr.SPAN_ROUTER_HTTP_MODELS)
        elif path == OPENAPI_PATH and method == "GET":
            names = self._names(self._config())
            await _send_json(send, 200, openapi_document(names))
        elif path == HEALTH_PATH and method == "GET":
            serving = self._serving()
            status = "SERVING" if serving else "NOT_SERVING"
            await _send_json(send, 200 if serving else 503, {"status": status})
        else:
            await self._error(send, http_only_error(404, f"no route {method} {path}"))

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _error(send: Send, reply: ErrorReply, span: Span | None = None) -> None:
        if span is not None:
            span.set_attribute(attr.HTTP_RESPONSE_STATUS_CODE, reply.status)
        # A 413 keeps the connection: closing it on an unread body would reset it under a
        # client still sending (the SDKs then see a connection error, not the 413); uvicorn
        # discards the rest of a body that arrives after the response.
        headers = [(k.encode(), v.encode()) for k, v in reply.headers]
        await _send_json(send, reply.status, reply.body, headers)

    # ---- the traced routes -------------------------------------------------------------------

    async def _traced(self, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        parent = propagate.extract(headers, context=Context())
        with self._tracer.start_as_current_span(
            name,
            context=parent,
            kind=SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            span.set_attribute(attr.HTTP_REQUEST_METHOD, scope["method"])
            span.set_attribute(attr.URL_PATH, scope["path"])
            span.set_attribute(attr.HTTP_ROUTE, name.partition(" ")[2])
            try:
                if scope["path"] == CHAT_PATH:
                    body = await self._read_body(receive, headers)
                    await self._chat(body, headers, receive, send, span)
                else:
                    await self._models(scope["path"], headers, send, span)
            except SwitchyardError as error:
                reply = error_reply(error)
                span.set_attribute(attr.ERROR_TYPE, error.code.name)
                if reply.status >= 500:
                    # HTTP conventions: a 4xx is the caller's, not an error of this span (and a
                    # traceback per refused request would cost more than serving it)
                    span.record_exception(error)
                    span.set_status(SpanStatus.ERROR, f"{error.code.name}: {error.message}")
                await self._error(send, reply, span)
            except _TooLarge:
                span.set_attribute(attr.ERROR_TYPE, "413")
                await self._error(
                    send,
                    http_only_error(
                        413, f"the request body is over the limit of {self._max_bytes} bytes"
                    ),
                    span,
                )
            except _ClientGone:
                span.set_status(SpanStatus.ERROR, "the client went away")
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(SpanStatus.ERROR, type(exc).__name__)
                span.set_attribute(attr.ERROR_TYPE, type(exc).__name__)
                trace_id = format(span.get_span_context().trace_id, "032x")
                log.error("unhandled error", route=name, exc_info=exc)
                await self._error(send, internal_error_reply(trace_id), span)

    async def _read_body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _tenant(self, config: RouterConfig, headers: dict[str, str]) -> str:
        auth = headers.get("authorization")
        return authenticate(config, None if auth is None else [("authorization", auth)])

    async def _models(self, path: str, headers: dict[str, str], send: Send, span: Span) -> None:
        config = self._config()
        span.set_attribute(attr.TENANT, self._tenant(config, headers))
        names = self._names(config)
        listing = model_list(names)
        if path != MODELS_PATH:
            wanted = path[len(MODELS_PATH) + 1 :]
            found = [m for m in listing["data"] if m["id"] == wanted]
            if not found:
                raise NotFound(f"the model {wanted!r} does not exist")
            span.set_attribute(attr.HTTP_RESPONSE_STATUS_CODE, 200)
            await _send_json(send, 200, found[0])
            return
        span.set_attribute(attr.HTTP_RESPONSE_STATUS_CODE, 200)
        await _send_json(send, 200, listing)

    async def _chat(
        self, body: bytes, headers: dict[str, str], receive: Receive, send: Send, span: Span
    ) -> None:
        config = self._config()
        tenant = self._tenant(config, headers)
        request = parse_request(body)
        routed = to_router_request(request, self._names(config))
        request_id = uuid.uuid4().hex
        span.set_attribute(attr.ROUTER_STREAM, request.stream)
        if isinstance(routed, router_pb2.CompleteStreamRequest):
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            await self._stream(routed, tenant, request_id, include_usage, receive, send, span)
            return
        response = await self._router.complete(routed, tenant, None, request_id=request_id)
        reply = completion_body(response, int(self._clock()))
        span.set_attribute(attr.HTTP_RESPONSE_STATUS_CODE, 200)
        await _send_json(
            send,
            200,
            reply,
            [
                (HEADER_REQUEST_ID.encode(), request_id.encode()),
                (HEADER_TARGET.encode(), response.decision.target.encode()),
                (HEADER_COST.encode(), repr(response.cost.total_cost_usd).encode()),
            ],
        )

    async def _stream(
        self,
        routed: router_pb2.CompleteStreamRequest,
        tenant: str,
        request_id: str,
        include_usage: bool,
        receive: Receive,
        send: Send,
        span: Span,
    ) -> None:
        """Relay the Router's stream as SSE. Headers go out with the first text (or the summary),
        so a failure before any output still gets its HTTP status; the client going away
        cancels the generation (the Router records it CANCELLED)."""
        this = asyncio.current_task()
        assert this is not None
        state = _StreamState()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not state.completed:  # uvicorn also says "disconnect" once the response is done
                state.gone = True
                this.cancel()

        watcher = asyncio.create_task(watch())
        try:
            events = self._router.stream(routed, tenant, None, request_id=request_id)
            async with aclosing(events):
                await self._relay(events, request_id, include_usage, send, span, state)
        except asyncio.CancelledError:
            if not state.gone:
                raise
            this.uncancel()
            raise _ClientGone from None
        finally:
            watcher.cancel()

    async def _relay(
        self,
        events: AsyncGenerator[router_pb2.CompleteStreamResponse, None],
        request_id: str,
        include_usage: bool,
        send: Send,
        span: Span,
        state: _StreamState,
    ) -> None:
        created = int(self._clock())
        decision = (await anext(events)).decision
        model = decision.model or decision.target
        started = False
        try:
            async for event in events:
                if not started:
                    started = True
                    span.set_attribute(attr.HTTP_RESPONSE_STATUS_CODE, 200)
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                *_SSE_HEADERS,
                                (HEADER_REQUEST_ID.encode(), request_id.encode()),
                                (HEADER_TARGET.encode(), decision.target.encode()),
                            ],
                        }
                    )
                    await self._body(send, _sse(first_chunk(request_id, created, decision)))
                if event.HasField("delta"):
                    chunk = content_chunk(request_id, created, model, event.delta)
                    await self._body(send, _sse(chunk))
                elif event.HasField("summary"):
                    summary = event.summary
                    out = _sse(finish_chunk(created, summary, last=not include_usage))
                    if include_usage:
                        out += _sse(usage_chunk(created, summary))
                    state.completed = True
                    await send({"type": "http.response.body", "body": out + _DONE})
                    # no return: the Router's stream ends after its summary, and only a stream
                    # run to its end is accounted OK (closing it early reads as CANCELLED)
            if not state.completed:
                raise SwitchyardError("the router's stream ended without its summary")
        except SwitchyardError as error:
            if not started:
                raise
            # Mid-stream: the status line is gone; OpenAI's SDKs raise on an `error` event.
            span.record_exception(error)
            span.set_status(SpanStatus.ERROR, f"{error.code.name}: {error.message}")
            state.completed = True
            await send({"type": "http.response.body", "body": _sse(error_reply(error).body)})
        except Exception as exc:
            if not started:
                raise
            span.record_exception(exc)
            span.set_status(SpanStatus.ERROR, type(exc).__name__)
            log.error("unhandled error mid-stream", exc_info=exc)
            trace_id = format(span.get_span_context().trace_id, "032x")
            state.completed = True
            await send(
                {"type": "http.response.body", "body": _sse(internal_error_reply(trace_id).body)}
            )

    @staticmethod
    async def _body(send: Send, data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})
