"""A local stand-in for the frontier APIs: a loopback HTTP/1.1 server speaking the real wire
formats of OpenAI Chat Completions and Anthropic Messages, streaming (SSE) included.

It is NOT a model: it answers with text derived from the prompt (or the text a test sets) and
reports the token usage a test sets (or a deterministic count), in exactly the JSON shapes and
SSE event sequences the real APIs use, so the frontier proxy's wire code, pricing, retries and
error mapping can be tested and benchmarked without the network.

Routes (base URLs are `standin.openai_base_url` and `standin.anthropic_base_url`; any path
prefix is accepted, so one server can stand in for several distinct upstreams):
- `POST .../chat/completions`  OpenAI: Bearer key; `stream` + `stream_options.include_usage`.
- `POST .../messages`          Anthropic: `x-api-key` + `anthropic-version`; `max_tokens` required.
- `POST /_standin/faults`, `POST /_standin/reply`, `POST /_standin/judge`,
  `POST /_standin/reset`, `GET /_standin/requests`: control from another process (JSON bodies,
  see `Fault`, `Reply`, `JudgeRule`).

A model with a `JudgeRule` (`standin.judges[model]`, or `POST /_standin/judge`) answers like a
pairwise judge reading the router's judge prompt (docs/services/outcomes.md): it finds the
request and the two answers between their tags, tells the frontier answer by a marker (the
stand-in's own answers start with "stand-in answer to:"), and replies `VERDICT: A|B|TIE` as the
rule says: prefer a tier, always the first position (a position-biased judge), or an answer
that names no verdict (an unparseable reply).

Faults are queued and each applies to one request (in order), optionally only to one model:
an HTTP error status with the provider's error body and `Retry-After`, a dropped connection
(no response), a slow response (delay before headers), a stream cut mid-way (the connection
closes without the terminal chunk), a stall mid-stream, or an in-stream error event.

Models named `missing-*` answer 404 in the provider's format. Every request is recorded
(`standin.requests`), including whether the client hung up before the answer was complete.

Run it alone with `python tests/support/frontier_standin.py [--port N]`: it prints one JSON line
with its base URLs and keys, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "DEFAULT_ANTHROPIC_KEY",
    "DEFAULT_OPENAI_KEY",
    "Fault",
    "FrontierStandin",
    "JudgeRule",
    "RecordedRequest",
    "Reply",
    "StandinUsage",
]

DEFAULT_OPENAI_KEY = "sk-standin-openai-0123456789abcdef"
DEFAULT_ANTHROPIC_KEY = "sk-ant-standin-0123456789abcdef"

_REASON = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}
_OPENAI_ERROR_TYPE = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}
_ANTHROPIC_ERROR_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class StandinUsage:
    """Token counts to report, in the normalised sense: `input_tokens` includes cached ones
    (Anthropic's wire `input_tokens` is sent without them), `output_tokens` includes reasoning."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass
class Reply:
    """What the stand-in answers. Unset text: "stand-in answer to: <last user message>".

    The text is sent in chunks of `chunk_words` words; `usage` unset: input = words in all
    messages + 4 per message, output = the number of chunks (+ reasoning chunks).
    """

    text: str | None = None
    reasoning_text: str = ""
    usage: StandinUsage | None = None
    finish_reason: str | None = None  # default: stop / end_turn, or length when max_tokens cut it
    chunk_words: int = 1
    first_chunk_delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    response_model: str | None = None  # default: the requested model


@dataclass
class Fault:
    """One injected failure, applied to the next matching request.

    kind: `status` (HTTP `status` with the provider's error body, `message`, `retry_after`,
    `retry_after_ms`), `drop` (close the connection without answering), `delay` (wait
    `seconds` before answering normally), `cut` (stream: close after `after_chunks` chunks;
    unary: close half-way through the body), `stall` (stream: pause `seconds` after
    `after_chunks` chunks), `stream_error` (stream: after `after_chunks` chunks send an error
    event of type `error_type`), `malformed` (a 200 whose body is `message` as it is, not JSON;
    stream: after `after_chunks` chunks an event whose data is `message`, then the body's end).
    """

    kind: str
    status: int = 500
    message: str | None = None
    retry_after: str | None = None
    retry_after_ms: str | None = None
    seconds: float = 0.0
    after_chunks: int = 0
    error_type: str = "overloaded_error"
    model: str | None = None  # only requests for this model; None: any


#: How the stand-in's own answers start (so a judge rule can tell the frontier answer).
STANDIN_MARKER = "stand-in answer to:"
_SECTION = re.compile(r"<(request|answer_a|answer_b)>\n(.*?)\n</\1>", re.DOTALL)


@dataclass
class JudgeRule:
    """How a judge model answers. `prefer`: `local`, `frontier` or `tie` (by tier: the answer
    containing `marker` is the frontier's), `first` (always A: position bias) or `unparseable`
    (a reply without a verdict). `by_request`: the exact request text -> a `prefer` value for
    it, overriding `prefer`."""

    prefer: str = "frontier"
    marker: str = STANDIN_MARKER
    by_request: dict[str, str] | None = None

    def reply(self, prompt: str) -> str:
        sections = dict(_SECTION.findall(prompt))
        prefer = (self.by_request or {}).get(sections.get("request", ""), self.prefer)
        if prefer == "unparseable" or "answer_a" not in sections:
            return "Both answers have their merits; I would rather not choose."
        if prefer == "first":
            return "VERDICT: A"
        if prefer == "tie":
            return "VERDICT: TIE"
        a_is_frontier = self.marker in sections["answer_a"]
        wants_a = a_is_frontier == (prefer == "frontier")
        return f"VERDICT: {'A' if wants_a else 'B'}"


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    started: float
    status: int = 0
    completed: bool = False
    client_disconnected: bool = False
    fault: str | None = None


class _ClientGone(Exception):
    pass


def _words(text: str) -> list[str]:
    return text.split()


def _chunks(text: str, words_per_chunk: int) -> list[str]:
    words = _words(text)
    out = []
    for i in range(0, len(words), words_per_chunk):
        piece = " ".join(words[i : i + words_per_chunk])
        out.append(piece if i == 0 else " " + piece)
    return out


class FrontierStandin:
    """The stand-in server. Use `async with FrontierStandin() as standin:`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        openai_key: str = DEFAULT_OPENAI_KEY,
        anthropic_key: str = DEFAULT_ANTHROPIC_KEY,
        record: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.openai_key = openai_key
        self.anthropic_key = anthropic_key
        self.reply = Reply()
        #: Models that answer as a pairwise judge (see `JudgeRule`).
        self.judges: dict[str, JudgeRule] = {}
        self.record = record
        self.requests: list[RecordedRequest] = []
        self._faults: deque[Fault] = deque()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FrontierStandin:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FrontierStandin:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/openai/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"{self.url}/anthropic/v1"

    # --- control -----------------------------------------------------------------------------

    def inject(self, *faults: Fault, times: int = 1) -> None:
        for _ in range(times):
            self._faults.extend(faults)

    def reset(self) -> None:
        self._faults.clear()
        self.requests.clear()
        self.reply = Reply()
        self.judges.clear()

    def pending_faults(self) -> int:
        return len(self._faults)

    def _take_fault(self, model: str) -> Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.model is None or fault.model == model:
                del self._faults[i]
                return fault
        return None

    # --- HTTP --------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                raw = await reader.readexactly(length) if length else b""
                keep_alive = headers.get("connection", "").lower() != "close"
                try:
                    keep_alive = (
                        await self._dispatch(method, path, headers, raw, reader, writer)
                        and keep_alive
                    )
                except _ClientGone:
                    return
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _dispatch(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        raw: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; False when the connection must close."""
        if path.startswith("/_standin/"):
            return await self._control(method, path, raw, writer)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        rec = RecordedRequest(method, path, headers, body, time.monotonic())
        if self.record:
            self.requests.append(rec)
        if method != "POST":
            await self._json(writer, 405, {"error": {"message": "method not allowed"}}, rec)
            return True
        # Any prefix works, so tests can give one server several distinct base URLs.
        if path.endswith("/chat/completions"):
            return await self._openai(headers, body, rec, reader, writer)
        if path.endswith("/messages"):
            return await self._anthropic(headers, body, rec, reader, writer)
        await self._json(writer, 404, {"error": {"message": f"no route {path}"}}, rec)
        return True

    async def _control(
        self, method: str, path: str, raw: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        data = json.loads(raw) if raw else None
        result: Any = {"ok": True}
        if path == "/_standin/faults" and method == "POST":
            items = data if isinstance(data, list) else [data]
            for item in items:
                item = dict(item)
                times = int(item.pop("times", 1))
                self.inject(Fault(**item), times=times)
        elif path == "/_standin/reply" and method == "POST":
            data = dict(data or {})
            usage = data.pop("usage", None)
            self.reply = Reply(**data, usage=StandinUsage(**usage) if usage else None)
        elif path == "/_standin/judge" and method == "POST":
            data = dict(data or {})
            model = str(data.pop("model"))
            self.judges[model] = JudgeRule(**data)
        elif path == "/_standin/reset" and method == "POST":
            self.reset()
        elif path == "/_standin/requests" and method == "GET":
            result = [asdict(r) for r in self.requests]
        else:
            result = {"error": f"unknown control {method} {path}"}
        payload = json.dumps(result).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        return True

    async def _json(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        payload: Any,
        rec: RecordedRequest,
        extra_headers: dict[str, str] | None = None,
        *,
        cut: bool = False,
    ) -> None:
        data = json.dumps(payload).encode()
        head = [
            f"HTTP/1.1 {status} {_REASON.get(status, 'Status')}",
            "content-type: application/json",
        ]
        head += [f"{k}: {v}" for k, v in (extra_headers or {}).items()]
        head.append(f"content-length: {len(data)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        rec.status = status
        if cut:
            writer.write(data[: len(data) // 2])
            await writer.drain()
            writer.close()
            raise _ClientGone
        writer.write(data)
        await writer.drain()
        rec.completed = True

    async def _raw(self, writer: asyncio.StreamWriter, data: bytes, rec: RecordedRequest) -> None:
        """A 200 whose body is `data` as it is (a `malformed` fault)."""
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(data)}\r\n\r\n".encode()
            + data
        )
        rec.status = 200
        await writer.drain()
        rec.completed = True

    async def _pause(
        self, seconds: float, reader: asyncio.StreamReader, rec: RecordedRequest
    ) -> None:
        """Sleep, noticing when the client hangs up meanwhile (it sends nothing while waiting)."""
        if seconds <= 0:
            return
        try:
            data = await asyncio.wait_for(reader.read(1), seconds)
        except TimeoutError:
            return
        except ConnectionError:
            data = b""
        if not data:
            rec.client_disconnected = True
            raise _ClientGone

    async def _stream_head(self, writer: asyncio.StreamWriter, rec: RecordedRequest) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        rec.status = 200

    async def _send_chunk(
        self, writer: asyncio.StreamWriter, data: bytes, rec: RecordedRequest
    ) -> None:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        try:
            await writer.drain()
        except ConnectionError:
            rec.client_disconnected = True
            raise _ClientGone from None

    async def _end_stream(self, writer: asyncio.StreamWriter, rec: RecordedRequest) -> None:
        writer.write(b"0\r\n\r\n")
        try:
            await writer.drain()
        except ConnectionError:
            rec.client_disconnected = True
            raise _ClientGone from None
        rec.completed = True

    async def _common_fault(
        self,
        fault: Fault | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rec: RecordedRequest,
    ) -> None:
        if fault is None:
            return
        rec.fault = fault.kind
        if fault.kind == "drop":
            writer.transport.abort()
            raise _ClientGone
        if fault.kind == "delay":
            await self._pause(fault.seconds, reader, rec)

    # --- the answer ----------------------------------------------------------------------------

    def _plan(
        self, messages: list[Any], max_tokens: int | None, model: str = ""
    ) -> tuple[list[str], list[str], StandinUsage, bool]:
        """(text chunks, reasoning chunks, usage, cut by max_tokens)."""
        reply = self.reply
        text = reply.text
        judge = self.judges.get(model)
        if judge is not None:
            last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
            content = last.get("content")
            text = judge.reply(content if isinstance(content, str) else "")
        elif text is None:
            last_user = next(
                (
                    m.get("content")
                    for m in reversed(messages)
                    if isinstance(m, dict) and m.get("role") == "user"
                ),
                "",
            )
            if not isinstance(last_user, str):
                last_user = json.dumps(last_user)
            text = f"stand-in answer to: {last_user}"
        chunks = _chunks(text, max(1, reply.chunk_words))
        reasoning = (
            _chunks(reply.reasoning_text, max(1, reply.chunk_words)) if reply.reasoning_text else []
        )
        truncated = False
        if max_tokens is not None and len(chunks) + len(reasoning) > max_tokens:
            keep = max(0, max_tokens - len(reasoning))
            chunks = chunks[:keep]
            truncated = True
        if reply.usage is not None:
            usage = reply.usage
        else:
            words = sum(
                len(_words(m["content"]))
                if isinstance(m, dict) and isinstance(m.get("content"), str)
                else 0
                for m in messages
            )
            usage = StandinUsage(
                input_tokens=words + 4 * len(messages),
                output_tokens=len(chunks) + len(reasoning),
                reasoning_tokens=len(reasoning),
            )
        return chunks, reasoning, usage, truncated

    # --- OpenAI --------------------------------------------------------------------------------

    def _openai_error(self, status: int, message: str, code: str | None = None) -> dict[str, Any]:
        return {
            "error": {
                "message": message,
                "type": _OPENAI_ERROR_TYPE.get(status, "server_error"),
                "param": None,
                "code": code,
            }
        }

    async def _openai(
        self,
        headers: dict[str, str],
        body: Any,
        rec: RecordedRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        auth = headers.get("authorization", "")
        if auth != f"Bearer {self.openai_key}":
            given = auth.removeprefix("Bearer ")
            # The real API quotes part of the key; this stand-in quotes all of it, the worst case.
            await self._json(
                writer,
                401,
                self._openai_error(401, f"Incorrect API key provided: {given}.", "invalid_api_key"),
                rec,
            )
            return True
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("messages"), list)
            or not body["messages"]
        ):
            await self._json(
                writer, 400, self._openai_error(400, "'messages' must be a non-empty array"), rec
            )
            return True
        model = str(body.get("model") or "")
        if not model:
            await self._json(
                writer, 400, self._openai_error(400, "you must provide a model parameter"), rec
            )
            return True
        temperature = body.get("temperature")
        if temperature is not None and not (0 <= temperature <= 2):
            await self._json(
                writer,
                400,
                self._openai_error(400, f"Invalid 'temperature': {temperature}; expected 0 to 2."),
                rec,
            )
            return True
        fault = self._take_fault(model)
        if fault is not None and fault.kind == "status":
            rec.fault = "status"
            extra = {}
            if fault.retry_after is not None:
                extra["retry-after"] = fault.retry_after
            if fault.retry_after_ms is not None:
                extra["retry-after-ms"] = fault.retry_after_ms
            message = fault.message or f"stand-in injected HTTP {fault.status}"
            await self._json(
                writer, fault.status, self._openai_error(fault.status, message), rec, extra
            )
            return True
        await self._common_fault(fault, reader, writer, rec)
        if model.startswith("missing-"):
            await self._json(
                writer,
                404,
                self._openai_error(
                    404,
                    f"The model `{model}` does not exist or you do not have access to it.",
                    "model_not_found",
                ),
                rec,
            )
            return True
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        chunks, reasoning, usage, truncated = self._plan(body["messages"], max_tokens, model)
        finish = self.reply.finish_reason or ("length" if truncated else "stop")
        response_model = self.reply.response_model or model
        ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        usage_json = {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {
                "cached_tokens": usage.cached_input_tokens,
                "audio_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": usage.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        if not body.get("stream"):
            if fault is not None and fault.kind == "malformed":
                await self._raw(writer, (fault.message or "").encode(), rec)
                return True
            await self._pause(self.reply.first_chunk_delay_s, reader, rec)
            message: dict[str, Any] = {
                "role": "assistant",
                "content": "".join(chunks),
                "refusal": None,
            }
            if reasoning:
                message["reasoning_content"] = "".join(reasoning)
            payload = {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": response_model,
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
                ],
                "usage": usage_json,
                "service_tier": "default",
                "system_fingerprint": "fp_standin",
            }
            await self._json(
                writer, 200, payload, rec, cut=fault is not None and fault.kind == "cut"
            )
            return True

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            data: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": response_model,
                "system_fingerprint": "fp_standin",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                data["usage"] = None
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"reasoning_content": piece}) for piece in reasoning]
        events += [chunk({"content": piece}) for piece in chunks]
        events.append(chunk({}, finish))
        if include_usage:
            final = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": response_model,
                "system_fingerprint": "fp_standin",
                "choices": [],
                "usage": usage_json,
            }
            events.append(b"data: " + json.dumps(final).encode() + b"\n\n")
        events.append(b"data: [DONE]\n\n")

        def error_event(f: Fault) -> bytes:
            err = self._openai_error(500, f.message or f"stand-in injected {f.error_type}")
            err["error"]["type"] = f.error_type
            return b"data: " + json.dumps(err).encode() + b"\n\n"

        await self._stream(events, fault, error_event, reader, writer, rec)
        return True

    async def _stream(
        self,
        events: list[bytes],
        fault: Fault | None,
        error_event: Any,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rec: RecordedRequest,
    ) -> None:
        await self._pause(self.reply.first_chunk_delay_s, reader, rec)
        await self._stream_head(writer, rec)
        for i, event in enumerate(events):
            if fault is not None and i == fault.after_chunks:
                if fault.kind == "cut":
                    await writer.drain()
                    writer.close()
                    raise _ClientGone
                if fault.kind == "stall":
                    await writer.drain()
                    await self._pause(fault.seconds, reader, rec)
                if fault.kind == "stream_error":
                    await self._send_chunk(writer, error_event(fault), rec)
                    await self._end_stream(writer, rec)
                    return
                if fault.kind == "malformed":
                    data = b"data: " + (fault.message or "").encode() + b"\n\n"
                    await self._send_chunk(writer, data, rec)
                    await self._end_stream(writer, rec)
                    return
            if i > 0 and self.reply.chunk_delay_s > 0:
                await writer.drain()
                await self._pause(self.reply.chunk_delay_s, reader, rec)
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            if i == 0 or self.reply.chunk_delay_s > 0:
                try:
                    await writer.drain()
                except ConnectionError:
                    rec.client_disconnected = True
                    raise _ClientGone from None
        await self._end_stream(writer, rec)

    # --- Anthropic -------------------------------------------------------------------------------

    def _anthropic_error(
        self, status: int, message: str, etype: str | None = None
    ) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {
                "type": etype or _ANTHROPIC_ERROR_TYPE.get(status, "api_error"),
                "message": message,
            },
        }

    async def _anthropic(
        self,
        headers: dict[str, str],
        body: Any,
        rec: RecordedRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        request_id = {"request-id": f"req_{uuid.uuid4().hex[:24]}"}
        if headers.get("x-api-key") != self.anthropic_key:
            await self._json(
                writer, 401, self._anthropic_error(401, "invalid x-api-key"), rec, request_id
            )
            return True
        if not headers.get("anthropic-version"):
            await self._json(
                writer,
                400,
                self._anthropic_error(400, "anthropic-version: header is required"),
                rec,
                request_id,
            )
            return True
        problems = []
        if not isinstance(body, dict):
            problems.append("body: must be an object")
            body = {}
        if not body.get("model"):
            problems.append("model: Field required")
        if not isinstance(body.get("max_tokens"), int):
            problems.append("max_tokens: Field required")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            problems.append("messages: at least one message is required")
            messages = []
        if any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
            problems.append(
                'messages: Unexpected role "system". '
                "The Messages API accepts a top-level `system` parameter"
            )
        temperature = body.get("temperature")
        if temperature is not None and not (0 <= temperature <= 1):
            problems.append(f"temperature: range: 0..1 (got {temperature})")
        if problems:
            await self._json(
                writer, 400, self._anthropic_error(400, "; ".join(problems)), rec, request_id
            )
            return True
        model = str(body["model"])
        fault = self._take_fault(model)
        if fault is not None and fault.kind == "status":
            rec.fault = "status"
            extra = dict(request_id)
            if fault.retry_after is not None:
                extra["retry-after"] = fault.retry_after
            message = fault.message or f"stand-in injected HTTP {fault.status}"
            await self._json(
                writer, fault.status, self._anthropic_error(fault.status, message), rec, extra
            )
            return True
        await self._common_fault(fault, reader, writer, rec)
        if model.startswith("missing-"):
            await self._json(
                writer, 404, self._anthropic_error(404, f"model: {model}"), rec, request_id
            )
            return True
        chunks, reasoning, usage, truncated = self._plan(messages, body["max_tokens"])
        finish = self.reply.finish_reason or ("max_tokens" if truncated else "end_turn")
        response_model = self.reply.response_model or model
        ident = f"msg_{uuid.uuid4().hex[:24]}"
        wire_usage = {
            "input_tokens": usage.input_tokens
            - usage.cached_input_tokens
            - usage.cache_write_tokens,
            "cache_creation_input_tokens": usage.cache_write_tokens,
            "cache_read_input_tokens": usage.cached_input_tokens,
            "output_tokens": usage.output_tokens,
            "service_tier": "standard",
        }
        thinking_block = {
            "type": "thinking",
            "thinking": "".join(reasoning),
            "signature": "c3RhbmQtaW4=",
        }
        if not body.get("stream"):
            if fault is not None and fault.kind == "malformed":
                await self._raw(writer, (fault.message or "").encode(), rec)
                return True
            await self._pause(self.reply.first_chunk_delay_s, reader, rec)
            content: list[dict[str, Any]] = [thinking_block] if reasoning else []
            content.append({"type": "text", "text": "".join(chunks)})
            payload = {
                "id": ident,
                "type": "message",
                "role": "assistant",
                "model": response_model,
                "content": content,
                "stop_reason": finish,
                "stop_sequence": None,
                "usage": wire_usage,
            }
            await self._json(
                writer, 200, payload, rec, request_id, cut=fault is not None and fault.kind == "cut"
            )
            return True

        def sse(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: ".encode() + json.dumps(data).encode() + b"\n\n"

        start_usage = dict(wire_usage, output_tokens=1)
        events = [
            sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": ident,
                        "type": "message",
                        "role": "assistant",
                        "model": response_model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            )
        ]
        index = 0
        if reasoning:
            events.append(
                sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                    },
                )
            )
            events += [
                sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "thinking_delta", "thinking": piece},
                    },
                )
                for piece in reasoning
            ]
            events.append(
                sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "signature_delta", "signature": "c3RhbmQtaW4="},
                    },
                )
            )
            events.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
            index = 1
        events.append(
            sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        events.append(sse("ping", {"type": "ping"}))
        events += [
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
            for piece in chunks
        ]
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(
            sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": finish, "stop_sequence": None},
                    "usage": {"output_tokens": usage.output_tokens},
                },
            )
        )
        events.append(sse("message_stop", {"type": "message_stop"}))

        def error_event(f: Fault) -> bytes:
            return sse("error", self._anthropic_error(529, f.message or "Overloaded", f.error_type))

        await self._stream(events, fault, error_event, reader, writer, rec)
        return True


async def _main(port: int) -> None:
    async with FrontierStandin(port=port) as standin:
        print(
            json.dumps(
                {
                    "url": standin.url,
                    "openai_base_url": standin.openai_base_url,
                    "anthropic_base_url": standin.anthropic_base_url,
                    "openai_key": standin.openai_key,
                    "anthropic_key": standin.anthropic_key,
                }
            ),
            flush=True,
        )
        await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.port))
