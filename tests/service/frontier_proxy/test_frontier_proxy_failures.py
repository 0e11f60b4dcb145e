"""Upstream trouble through the proxy: retries, Retry-After, circuit breaker, status mapping,
deadline propagation, streams cut mid-way (secrets: test_frontier_proxy_secrets.py)."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from frontier_fixtures import BAD_KEY, user
from support.frontier_standin import Fault, Reply

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.runtime import attributes as attr

pytestmark = pytest.mark.timeout(60)


def gen(model: str = "gpt-4o", text: str = "hi", **params: object) -> pb.GenerateRequest:
    return pb.GenerateRequest(
        model=model, messages=user(text), parameters=pb.GenerationParameters(**params)
    )


def gen_stream(model: str = "gpt-4o", text: str = "hi") -> pb.GenerateStreamRequest:
    return pb.GenerateStreamRequest(model=model, messages=user(text))


async def rpc_error(awaitable) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    return info.value


def retry_events(spans, name: str = "chat gpt-4o"):  # type: ignore[no-untyped-def]
    (span,) = [s for s in spans.get_finished_spans() if s.name == name]
    return span, [e for e in span.events if e.name == attr.EVENT_FRONTIER_RETRY]


# --- retries ---------------------------------------------------------------------------------


async def test_429_with_retry_after_is_retried_and_honoured(proxy, fresh_standin, spans) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.inject(Fault("status", status=429, retry_after="0.3"), times=2)
    _, stub = proxy
    started = time.monotonic()
    answer = await stub.Generate(gen(), timeout=10)
    elapsed = time.monotonic() - started
    assert answer.text.startswith("stand-in answer")
    assert len(fresh_standin.requests) == 3
    assert elapsed >= 0.6  # waited the two Retry-After delays, not the 10 ms backoff
    span, events = retry_events(spans)
    assert [e.attributes[attr.FRONTIER_RETRY_ATTEMPT] for e in events] == [1, 2]
    assert all(e.attributes[attr.FRONTIER_RETRY_DELAY_S] == pytest.approx(0.3) for e in events)
    assert events[0].attributes[attr.FRONTIER_RETRY_REASON] == "HTTP 429"
    assert span.attributes[attr.FRONTIER_ATTEMPTS] == 3


async def test_retry_after_ms_is_honoured(proxy, fresh_standin, spans) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.inject(Fault("status", status=429, retry_after_ms="250"))
    _, stub = proxy
    await stub.Generate(gen(), timeout=10)
    _, (event,) = retry_events(spans)
    assert event.attributes[attr.FRONTIER_RETRY_DELAY_S] == pytest.approx(0.25)


async def test_429_after_retries_is_resource_exhausted(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.inject(
        Fault("status", status=429, message="Rate limit reached for gpt-4o"), times=3
    )
    _, stub = proxy
    error = await rpc_error(stub.Generate(gen(), timeout=10))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Rate limit reached for gpt-4o" in error.details()
    assert "3 attempt(s)" in error.details()
    assert len(fresh_standin.requests) == 3


async def test_retry_after_beyond_deadline_gives_up_at_once(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.inject(Fault("status", status=429, retry_after="20"))
    _, stub = proxy
    started = time.monotonic()
    error = await rpc_error(stub.Generate(gen(), timeout=3))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert time.monotonic() - started < 1.5
    assert len(fresh_standin.requests) == 1


async def test_5xx_and_dropped_connections_are_retried(proxy, fresh_standin, spans) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.inject(Fault("status", status=503), Fault("drop"))
    _, stub = proxy
    answer = await stub.Generate(gen(), timeout=10)
    assert answer.text
    assert len(fresh_standin.requests) == 3
    _, events = retry_events(spans)
    reasons = [e.attributes[attr.FRONTIER_RETRY_REASON] for e in events]
    assert reasons[0] == "HTTP 503"
    assert reasons[1] in ("RemoteProtocolError", "ReadError")


async def test_5xx_after_retries_is_unavailable(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.inject(Fault("status", status=529, message="Overloaded"), times=3)
    _, stub = proxy
    error = await rpc_error(stub.Generate(gen("claude-haiku-4-5"), timeout=10))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "HTTP 529" in error.details() and "Overloaded" in error.details()
    assert len(fresh_standin.requests) == 3


async def test_unreachable_upstream_is_unavailable(proxy_factory, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    async with proxy_factory(max_attempts=2) as (_, stub):
        fresh_standin.inject(Fault("drop"), times=2)
        error = await rpc_error(stub.Generate(gen(), timeout=10))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "unreachable" in error.details()


# --- streams -----------------------------------------------------------------------------------


async def test_stream_cut_after_text_ends_in_error_without_retry(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.reply = Reply(text="one two three four five six seven eight")
    fresh_standin.inject(Fault("cut", after_chunks=4))  # role chunk + 3 words, then the cut
    _, stub = proxy
    received, completes = [], []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for message in stub.GenerateStream(gen_stream(), timeout=10):
            if message.HasField("delta"):
                received.append(message.delta.text)
            else:
                completes.append(message)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "cut mid-way" in info.value.details()
    assert "".join(received) == "one two three"
    assert completes == []  # no silent short answer
    assert len(fresh_standin.requests) == 1  # bytes had reached the caller: no retry


@pytest.mark.parametrize("model", ["gpt-4o", "claude-haiku-4-5"])
async def test_stream_cut_before_any_text_is_retried(proxy, fresh_standin, model) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.inject(Fault("cut", after_chunks=1))
    _, stub = proxy
    completes = [
        m
        async for m in stub.GenerateStream(gen_stream(model), timeout=10)
        if m.HasField("complete")
    ]
    assert len(completes) == 1
    assert len(fresh_standin.requests) == 2


async def test_anthropic_overloaded_event_before_text_is_retried(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.inject(Fault("stream_error", after_chunks=1, error_type="overloaded_error"))
    _, stub = proxy
    messages = [m async for m in stub.GenerateStream(gen_stream("claude-haiku-4-5"), timeout=10)]
    assert messages[-1].HasField("complete")
    assert len(fresh_standin.requests) == 2


async def test_error_event_after_text_ends_stream_in_error(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.reply = Reply(text="a b c d e")
    fresh_standin.inject(Fault("stream_error", after_chunks=5, error_type="overloaded_error"))
    _, stub = proxy
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for message in stub.GenerateStream(gen_stream("claude-haiku-4-5"), timeout=10):
            assert not message.HasField("complete")
            received.append(message.delta.text)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "overloaded_error" in info.value.details()
    assert received  # text had been sent before the error
    assert len(fresh_standin.requests) == 1


async def test_stream_rate_limited_then_served(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.inject(Fault("status", status=429, retry_after="0.05"))
    _, stub = proxy
    messages = [m async for m in stub.GenerateStream(gen_stream(), timeout=10)]
    assert messages[-1].HasField("complete")
    assert len(fresh_standin.requests) == 2


# --- status mapping ----------------------------------------------------------------------------


async def test_upstream_400_is_invalid_argument_with_its_message(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    _, stub = proxy
    # The contract allows temperature up to 2; Anthropic allows 1: Anthropic's own 400 comes back.
    error = await rpc_error(stub.Generate(gen("claude-haiku-4-5", temperature=1.5), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "temperature: range: 0..1" in error.details()
    assert len(fresh_standin.requests) == 1  # 400 is not retried


async def test_rejected_key_is_a_server_side_error_naming_the_model(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    _, stub = proxy
    error = await rpc_error(stub.Generate(gen("gpt-4o-badkey"), timeout=10))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "gpt-4o-badkey" in error.details()
    assert "$STANDIN_BAD_KEY" in error.details()
    assert BAD_KEY not in error.details()
    assert BAD_KEY[-8:] not in error.details()
    assert len(fresh_standin.requests) == 1


async def test_upstream_404_is_not_found(proxy) -> None:  # type: ignore[no-untyped-def]
    _, stub = proxy
    error = await rpc_error(stub.Generate(gen("gone-model"), timeout=10))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "missing-model-x" in error.details()


async def test_unknown_model_is_not_found_without_upstream_call(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    _, stub = proxy
    error = await rpc_error(stub.Generate(gen("no-such-model"), timeout=10))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "gpt-4o" in error.details()  # lists what is served
    stream_error = await rpc_error(
        _drain(stub.GenerateStream(gen_stream("no-such-model"), timeout=10))
    )
    assert stream_error.code() == grpc.StatusCode.NOT_FOUND
    assert fresh_standin.requests == []


async def _drain(stream) -> None:  # type: ignore[no-untyped-def]
    async for _ in stream:
        pass


async def test_bad_request_is_refused_before_any_upstream_call(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    _, stub = proxy
    error = await rpc_error(stub.Generate(pb.GenerateRequest(model="gpt-4o"), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at least one message" in error.details()
    error = await rpc_error(stub.Generate(gen(top_p=0.0), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fresh_standin.requests == []


# --- deadlines ---------------------------------------------------------------------------------


async def test_deadline_propagates_and_the_upstream_request_is_abandoned(
    proxy, fresh_standin
) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.inject(Fault("delay", seconds=5))
    _, stub = proxy
    started = time.monotonic()
    error = await rpc_error(stub.Generate(gen(), timeout=0.5))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.0
    for _ in range(50):  # the stand-in notices the hang-up on its own schedule
        if fresh_standin.requests[0].client_disconnected:
            break
        await asyncio.sleep(0.05)
    assert fresh_standin.requests[0].client_disconnected
    assert not fresh_standin.requests[0].completed


async def test_stream_stalled_past_deadline_is_abandoned(proxy, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    fresh_standin.reply = Reply(text="a b c d")
    fresh_standin.inject(Fault("stall", after_chunks=3, seconds=5))
    _, stub = proxy
    started = time.monotonic()
    error = await rpc_error(_drain(stub.GenerateStream(gen_stream(), timeout=0.7)))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.5
    for _ in range(50):
        if fresh_standin.requests[0].client_disconnected:
            break
        await asyncio.sleep(0.05)
    assert fresh_standin.requests[0].client_disconnected


async def test_backoff_never_outlasts_the_deadline(proxy_factory, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    async with proxy_factory(backoff_base_s=2.0, backoff_max_s=2.0, max_attempts=5) as (_, stub):
        fresh_standin.inject(Fault("status", status=500), times=5)
        started = time.monotonic()
        error = await rpc_error(stub.Generate(gen(), timeout=1.0))
        elapsed = time.monotonic() - started
    # Either the backoff draw fit (a retry then hits the deadline) or it did not (gave up early).
    assert error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert elapsed < 1.5


# --- circuit breaker ---------------------------------------------------------------------------


async def test_circuit_opens_fails_fast_then_probes_and_closes(
    proxy_factory, fresh_standin, spans
) -> None:  # type: ignore[no-untyped-def]
    async with proxy_factory(max_attempts=1, breaker_failure_threshold=3, breaker_reset_s=0.4) as (
        _,
        stub,
    ):
        fresh_standin.inject(Fault("status", status=500), times=3)
        for _ in range(3):
            error = await rpc_error(stub.Generate(gen(), timeout=5))
            assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert len(fresh_standin.requests) == 3
        # Open: refused at once, the upstream is not called.
        error = await rpc_error(stub.Generate(gen(), timeout=5))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "circuit open" in error.details()
        assert len(fresh_standin.requests) == 3
        # Other upstreams are unaffected.
        await stub.Generate(gen("claude-haiku-4-5"), timeout=5)
        await asyncio.sleep(0.45)
        # Half-open: the probe goes through, succeeds, and closes the circuit.
        await stub.Generate(gen(), timeout=5)
        await stub.Generate(gen(), timeout=5)
        assert len(fresh_standin.requests) == 6
    opened = [
        s
        for s in spans.get_finished_spans()
        if any(e.name == attr.EVENT_FRONTIER_CIRCUIT_OPEN for e in s.events)
    ]
    assert len(opened) == 1


async def test_failed_probe_reopens_the_circuit(proxy_factory, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    async with proxy_factory(max_attempts=1, breaker_failure_threshold=2, breaker_reset_s=0.3) as (
        _,
        stub,
    ):
        fresh_standin.inject(Fault("status", status=502), times=3)
        for _ in range(2):
            await rpc_error(stub.Generate(gen(), timeout=5))
        await asyncio.sleep(0.35)
        probe = await rpc_error(stub.Generate(gen(), timeout=5))
        assert "HTTP 502" in probe.details()
        error = await rpc_error(stub.Generate(gen(), timeout=5))
        assert "circuit open" in error.details()
        assert len(fresh_standin.requests) == 3


async def test_client_errors_do_not_open_the_circuit(proxy_factory, fresh_standin) -> None:  # type: ignore[no-untyped-def]
    async with proxy_factory(max_attempts=1, breaker_failure_threshold=2) as (_, stub):
        for _ in range(3):
            error = await rpc_error(
                stub.Generate(gen("claude-haiku-4-5", temperature=1.5), timeout=5)
            )
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        await stub.Generate(gen("claude-haiku-4-5"), timeout=5)


# --- malformed answers ---------------------------------------------------------------------


async def test_answers_of_an_unexpected_shape_are_the_upstreams_fault_not_internal(
    proxy, fresh_standin
) -> None:  # type: ignore[no-untyped-def]
    _, stub = proxy
    # `choices` an object, not a list: before, a KeyError inside the fold became INTERNAL.
    fresh_standin.inject(Fault("malformed", after_chunks=1, message='{"choices": {"a": 1}}'))
    error = await rpc_error(_drain(stub.GenerateStream(gen_stream(), timeout=10)))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "malformed answer" in error.details()
    # A finish reason that is a list is just an unknown finish reason.
    odd = (
        '{"model": "gpt-4o", "choices": [{"message": {"content": "fine"}, "finish_reason": ["x"]}],'
        ' "usage": {"prompt_tokens": 3, "completion_tokens": 1}}'
    )
    fresh_standin.inject(Fault("malformed", message=odd))
    answer = await stub.Generate(gen(), timeout=10)
    assert answer.text == "fine"
    assert answer.finish_reason == pb.FINISH_REASON_UNSPECIFIED
