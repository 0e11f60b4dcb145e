"""API keys never reach an error, a log line or an exported span, whatever the upstream echoes.

The stand-in upstream puts the proxy's own keys (whole, or a fragment) into every kind of
failure both wire formats have: HTTP 4xx and 5xx bodies, in-stream error events (message and
type), malformed answers whose values are the key, dropped and cut connections, and an
upstream URL whose password is a secret. The test captures the callers' error details, the
JSON log stream, standard-library log records and every span the in-memory exporter got
(attributes, events with recorded exceptions and their stack traces, status), and checks that
no 12-character run of any secret is in any of them, while each error still says what
happened. The same scan over the OTLP path (a proxy process exporting to a receiver) is in
test_frontier_proxy_secrets_otlp.py.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
import structlog
from frontier_fixtures import BAD_KEY, user
from support.frontier_standin import Fault, FrontierStandin

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.runtime import attributes as attr
from switchyard.runtime.logging import setup_logging

pytestmark = pytest.mark.timeout(120)

URL_PASSWORD = "pw-upstream-url-secret-31337"


def windows(secret: str, size: int = 12) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


@dataclass
class Capture:
    stream: io.StringIO
    caplog: pytest.LogCaptureFixture
    details: list[str] = field(default_factory=list)

    def logs(self) -> str:
        return self.stream.getvalue() + "\n".join(
            r.getMessage() + str(r.__dict__) for r in self.caplog.records
        )


@pytest.fixture
def capture(caplog: pytest.LogCaptureFixture) -> Iterator[Capture]:
    stream = io.StringIO()
    setup_logging("frontier-proxy-test", "DEBUG", stream=stream)
    caplog.set_level(logging.DEBUG)
    try:
        yield Capture(stream, caplog)
    finally:
        structlog.reset_defaults()
        setup_logging("switchyard-tests", "INFO")  # as tests/conftest.py left it


def leaks(text: str, secrets: list[str]) -> list[str]:
    return sorted({w for s in secrets for w in windows(s) if w in text})


async def fail(call) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def drain(stream) -> list[pb.GenerateStreamResponse]:  # type: ignore[no-untyped-def]
    return [m async for m in stream]


def unary(model: str) -> pb.GenerateRequest:
    return pb.GenerateRequest(model=model, messages=user("hi"))


def streamed(model: str) -> pb.GenerateStreamRequest:
    return pb.GenerateStreamRequest(model=model, messages=user("one two three four five six"))


def malformed_stream(provider: str, key: str) -> str:
    """An SSE event (and what follows it) whose values are the key: not the API's format."""
    if provider == "openai":
        return json.dumps({"choices": [], "usage": {"prompt_tokens": key}})
    start = {"type": "message_start", "message": {"model": "m", "usage": {"input_tokens": key}}}
    return json.dumps(start) + '\n\ndata: {"type": "message_stop"}'


def malformed_unary(provider: str, key: str) -> str:
    if provider == "openai":
        return json.dumps(
            {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": key}}
        )
    return json.dumps({"content": [], "usage": {"output_tokens": key}})


@dataclass(frozen=True)
class Case:
    name: str
    fault: Fault
    code: grpc.StatusCode
    useful: tuple[str, ...]  # what the caller's error must still say
    stream: bool = False
    times: int = 1


def cases(provider: str, key: str) -> list[Case]:
    S = grpc.StatusCode
    fragment = key[3:-3]  # an upstream that quotes part of the key
    return [
        Case(
            "HTTP 400 quoting the key",
            Fault("status", status=400, message=f"bad request from key {key}"),
            S.INVALID_ARGUMENT,
            ("rejected the request", "bad request from key", "[redacted]"),
        ),
        Case(
            "HTTP 400 quoting part of the key",
            Fault("status", status=400, message=f"the key ending {fragment} is bad"),
            S.INVALID_ARGUMENT,
            ("the key ending", "[redacted]"),
        ),
        Case(
            "HTTP 5xx (retried) quoting the key",
            Fault("status", status=503, message=f"backend down; {key} was used"),
            S.UNAVAILABLE,
            ("HTTP 503", "3 attempt(s)", "backend down"),
            times=3,
        ),
        Case(
            "HTTP 5xx on a stream",
            Fault("status", status=502, message=f"gateway {key}"),
            S.UNAVAILABLE,
            ("HTTP 502",),
            stream=True,
            times=3,
        ),
        Case(
            "in-stream error event before text (retried)",
            Fault(
                "stream_error",
                after_chunks=1,
                error_type="overloaded_error",
                message=f"overloaded for {key}",
            ),
            S.UNAVAILABLE,
            ("overloaded_error", "overloaded for"),
            stream=True,
            times=3,
        ),
        Case(
            "in-stream error event after text",
            Fault("stream_error", after_chunks=5, error_type="api_error", message=key),
            S.UNAVAILABLE,
            ("after text was sent", "api_error"),
            stream=True,
        ),
        Case(
            "in-stream error event whose type is the key",
            Fault("stream_error", after_chunks=1, error_type=key, message="odd"),
            S.UNAVAILABLE,
            ("[redacted]",),
            stream=True,
            times=3,
        ),
        Case(
            "malformed SSE event with the key as a value",
            Fault("malformed", after_chunks=1, message=malformed_stream(provider, key)),
            S.UNAVAILABLE,
            ("malformed answer",),
            stream=True,
        ),
        Case(
            "SSE event that is not JSON",
            Fault("malformed", after_chunks=1, message=f"not json {key}"),
            S.UNAVAILABLE,
            ("malformed answer", "invalid JSON"),
            stream=True,
        ),
        Case(
            "malformed unary answer with the key as a value",
            Fault("malformed", message=malformed_unary(provider, key)),
            S.UNAVAILABLE,
            ("malformed answer",),
        ),
        Case(
            "dropped connections (retried)",
            Fault("drop"),
            S.UNAVAILABLE,
            ("unreachable", "3 attempt(s)"),
            times=3,
        ),
        Case(
            "stream cut after text",
            Fault("cut", after_chunks=4),
            S.UNAVAILABLE,
            ("cut mid-way",),
            stream=True,
        ),
    ]


@pytest.mark.parametrize(
    ("model", "provider"), [("gpt-4o", "openai"), ("claude-haiku-4-5", "anthropic")]
)
async def test_upstream_failures_of_both_wire_formats_never_leak_a_key(
    proxy_factory, fresh_standin: FrontierStandin, spans, capture: Capture, model, provider
) -> None:  # type: ignore[no-untyped-def]
    key = fresh_standin.openai_key if provider == "openai" else fresh_standin.anthropic_key
    outcomes: list[tuple[Case, grpc.aio.AioRpcError]] = []
    async with proxy_factory(breaker_failure_threshold=1000) as (_, stub):
        for case in cases(provider, key):
            fresh_standin.inject(case.fault, times=case.times)
            if case.stream:
                error = await fail(drain(stub.GenerateStream(streamed(model), timeout=10)))
            else:
                error = await fail(stub.Generate(unary(model), timeout=10))
            outcomes.append((case, error))
            assert fresh_standin.pending_faults() == 0, case.name

    secrets = [fresh_standin.openai_key, fresh_standin.anthropic_key, BAD_KEY]
    for case, error in outcomes:
        assert error.code() == case.code, (case.name, error.details())
        for words in case.useful:
            assert words in error.details(), (case.name, error.details())
        assert not leaks(error.details(), secrets), (case.name, error.details())
    finished = spans.get_finished_spans()
    exported = "\n".join(s.to_json() for s in finished)
    # The spans hold what the scan must cover: retries, recorded exceptions with stack traces.
    assert any(e.name == attr.EVENT_FRONTIER_RETRY for s in finished for e in s.events)
    assert "exception.stacktrace" in exported
    assert "retrying upstream call" in capture.logs()
    assert not leaks(exported, secrets), "a key leaked into a span"
    assert not leaks(capture.logs(), secrets), "a key leaked into the logs"


async def test_credentials_in_an_upstream_url_never_leak(
    proxy_factory, fresh_standin: FrontierStandin, spans, capture: Capture, unused_port: int
) -> None:  # type: ignore[no-untyped-def]
    """A base URL with a password (and nothing listening): connection errors, the circuit that
    opens, the retry log and the span's server.address all keep the password out."""
    gone = {
        "name": "gone-upstream",
        "provider": "openai_compatible",
        "base_url": f"http://proxyuser:{URL_PASSWORD}@127.0.0.1:{unused_port}/v1",
        "price_lookup": False,
        "context_window": 8192,
        "prices": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 1},
    }
    async with proxy_factory(extra_models=(gone,), max_attempts=2, breaker_failure_threshold=2) as (
        _,
        stub,
    ):
        refused = await fail(stub.Generate(unary("gone-upstream"), timeout=10))
        circuit = await fail(stub.Generate(unary("gone-upstream"), timeout=10))
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    assert "unreachable" in refused.details() and "ConnectError" in refused.details()
    assert circuit.code() == grpc.StatusCode.UNAVAILABLE
    assert "circuit open" in circuit.details()
    assert "proxyuser:[redacted]@127.0.0.1" in circuit.details()
    exported = "\n".join(s.to_json() for s in spans.get_finished_spans())
    assert "proxyuser:[redacted]@" in exported  # server.address, redacted
    for where, text in {
        "errors": refused.details() + circuit.details(),
        "spans": exported,
        "logs": capture.logs(),
    }.items():
        assert not leaks(text, [URL_PASSWORD]), f"the URL's password leaked into {where}"


async def test_api_keys_never_reach_errors_logs_or_spans(
    proxy_factory, fresh_standin, spans, capture: Capture
) -> None:  # type: ignore[no-untyped-def]
    """Auth failures (the stand-in echoes the whole rejected key), retries, cut streams and 5xx,
    with prompt logging on."""
    keys = [BAD_KEY, fresh_standin.openai_key, fresh_standin.anthropic_key]
    details = capture.details
    async with proxy_factory(log_prompts=True) as (running, stub):
        details.append((await fail(stub.Generate(unary("gpt-4o-badkey"), timeout=5))).details())
        details.append(
            (await fail(drain(stub.GenerateStream(streamed("gpt-4o-badkey"), timeout=5)))).details()
        )
        fresh_standin.inject(Fault("status", status=429, retry_after="0.01"), Fault("drop"))
        await stub.Generate(unary("claude-haiku-4-5"), timeout=5)
        fresh_standin.inject(Fault("status", status=500), times=3)
        details.append((await fail(stub.Generate(unary("gpt-4o"), timeout=5))).details())
        fresh_standin.inject(Fault("cut", after_chunks=3))
        details.append(
            (await fail(drain(stub.GenerateStream(streamed("gpt-4o"), timeout=5)))).details()
        )
        await stub.Generate(unary("gpt-4o"), timeout=5)
        proxy_state = repr(running.resources.proxy.catalog)
    # Upstream answers quoted the bad key in full; none of it may come through.
    assert any("gpt-4o-badkey" in d for d in details)
    haystacks = {
        "errors": "\n".join(details),
        "logs": capture.logs(),
        "spans": "\n".join(s.to_json() for s in spans.get_finished_spans()),
        "catalog repr": proxy_state,
    }
    assert "retrying upstream call" in haystacks["logs"]  # the logs were captured
    assert json.loads(spans.get_finished_spans()[0].to_json())  # and spans too
    for where, text in haystacks.items():
        for key in keys:
            assert key not in text, f"an API key leaked into {where}"
            assert key[-12:] not in text, f"part of an API key leaked into {where}"
