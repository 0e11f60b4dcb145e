"""SSE decoding and the OpenAI / Anthropic wire formats (pure)."""

from __future__ import annotations

import json

import pytest

from switchyard.frontier_proxy.completion import (
    ChatCall,
    ChatTurn,
    FinishReason,
    Sampling,
    StreamDelta,
    TokenUsage,
    TurnRole,
)
from switchyard.frontier_proxy.providers import anthropic_wire, openai_wire, wire
from switchyard.frontier_proxy.providers.sse import SseDecoder, SseEvent
from switchyard.frontier_proxy.providers.wire import (
    StreamIncomplete,
    UpstreamStreamError,
    WireError,
)


def events(text: str) -> list[SseEvent]:
    decoder = SseDecoder()
    out = [e for line in text.split("\n") if (e := decoder.feed(line)) is not None]
    if (tail := decoder.flush()) is not None:
        out.append(tail)
    return out


def test_sse_decoder_follows_the_event_stream_rules() -> None:
    got = events(
        ": comment\n"
        'event: message_start\ndata: {"a": 1}\n\n'
        "data:no-space\ndata: second line\n\n"
        "id: 7\nretry: 10\n\n"
        "data: tail without blank line"
    )
    assert got == [
        SseEvent("message_start", '{"a": 1}'),
        SseEvent("message", "no-space\nsecond line"),
        SseEvent("message", "tail without blank line"),
    ]


CALL = ChatCall(
    turns=(
        ChatTurn(TurnRole.SYSTEM, "be brief"),
        ChatTurn(TurnRole.USER, "hello"),
        ChatTurn(TurnRole.ASSISTANT, "hi"),
        ChatTurn(TurnRole.USER, "again"),
    ),
    sampling=Sampling(max_tokens=20, temperature=0.5, top_p=0.9, stop=("END",), seed=3),
)


def test_openai_body_maps_every_parameter_and_asks_for_stream_usage() -> None:
    body = openai_wire.build_body(
        "gpt-4o", CALL, stream=True, max_tokens_field="max_completion_tokens"
    )
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["max_completion_tokens"] == 20
    assert (body["temperature"], body["top_p"], body["stop"], body["seed"]) == (
        0.5,
        0.9,
        ["END"],
        3,
    )
    assert body["stream_options"] == {"include_usage": True}
    unary = openai_wire.build_body(
        "m", ChatCall(turns=CALL.turns), stream=False, max_tokens_field="max_tokens"
    )
    assert "stream" not in unary and "max_tokens" not in unary and "temperature" not in unary


def test_openai_usage_keeps_cached_and_reasoning_as_subsets() -> None:
    usage = openai_wire.parse_usage(
        {
            "prompt_tokens": 100,
            "completion_tokens": 40,
            "prompt_tokens_details": {"cached_tokens": 30},
            "completion_tokens_details": {"reasoning_tokens": 25},
        }
    )
    assert usage == TokenUsage(
        input_tokens=100, output_tokens=40, cached_input_tokens=30, reasoning_tokens=25
    )
    assert openai_wire.parse_usage(
        {"prompt_tokens": 5, "completion_tokens": 1, "prompt_tokens_details": None}
    ) == (TokenUsage(5, 1))
    with pytest.raises(WireError):
        openai_wire.parse_usage(
            {
                "prompt_tokens": 5,
                "completion_tokens": 1,
                "prompt_tokens_details": {"cached_tokens": 9},
            }
        )
    with pytest.raises(WireError):
        openai_wire.parse_usage({"prompt_tokens": -1, "completion_tokens": 1})


def test_openai_completion_parsing() -> None:
    completion = openai_wire.parse_completion(
        {
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "message": {"content": "Hi", "reasoning_content": "hmm"},
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }
    )
    assert (completion.text, completion.reasoning_text, completion.finish_reason) == (
        "Hi",
        "hmm",
        FinishReason.LENGTH,
    )
    with pytest.raises(WireError, match="no usage"):
        openai_wire.parse_completion({"choices": [{"message": {"content": "x"}}]})
    with pytest.raises(WireError, match="no choices"):
        openai_wire.parse_completion({"choices": [], "usage": {}})


def _chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> SseEvent:
    payload = {
        "model": "gpt-4o",
        "choices": [{"delta": delta, "finish_reason": finish}] if delta is not None else [],
    }
    payload["usage"] = usage
    return SseEvent("message", json.dumps(payload))


def test_openai_stream_folds_deltas_and_final_usage() -> None:
    fold = openai_wire.OpenAIStream()
    got = [
        fold.feed(_chunk({"role": "assistant", "content": ""})),
        fold.feed(_chunk({"reasoning": "think"})),
        fold.feed(_chunk({"content": "Hel"})),
        fold.feed(_chunk({"content": "lo"})),
        fold.feed(_chunk({}, "stop")),
        fold.feed(_chunk(None, usage={"prompt_tokens": 7, "completion_tokens": 3})),
        fold.feed(SseEvent("message", "[DONE]")),
    ]
    assert got == [
        None,
        StreamDelta(reasoning_text="think"),
        StreamDelta("Hel"),
        StreamDelta("lo"),
        None,
        None,
        None,
    ]
    end = fold.end()
    assert (end.model, end.finish_reason, end.usage) == (
        "gpt-4o",
        FinishReason.STOP,
        TokenUsage(7, 3),
    )


def test_openai_stream_without_done_or_usage_is_an_error() -> None:
    fold = openai_wire.OpenAIStream()
    fold.feed(_chunk({"content": "x"}))
    with pytest.raises(StreamIncomplete):
        fold.end()
    fold.feed(SseEvent("message", "[DONE]"))
    with pytest.raises(WireError, match="without usage"):
        fold.end()


def test_openai_stream_error_chunk_raises() -> None:
    fold = openai_wire.OpenAIStream()
    with pytest.raises(UpstreamStreamError) as info:
        fold.feed(
            SseEvent("message", json.dumps({"error": {"message": "boom", "type": "server_error"}}))
        )
    assert info.value.http_status == 500 and info.value.message == "boom"


def test_error_message_extraction_for_both_formats() -> None:
    assert wire.error_message(b'{"error": {"message": "bad temperature"}}') == "bad temperature"
    assert wire.error_message(b'{"message": "vllm style"}') == "vllm style"
    assert wire.error_message(b"<html>gateway</html>") == "<html>gateway</html>"
    anthropic = b'{"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}'
    assert wire.error_message(anthropic) == "no"
    assert wire.error_message(b'{"error": "plain string"}') == "plain string"


def test_anthropic_body_moves_system_and_requires_max_tokens() -> None:
    body = anthropic_wire.build_body("claude", CALL, stream=True, default_max_tokens=512)
    assert body["system"] == "be brief"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["max_tokens"] == 20 and body["stop_sequences"] == ["END"] and body["stream"] is True
    assert "seed" not in body
    plain = anthropic_wire.build_body(
        "claude", ChatCall(turns=CALL.turns[1:2]), stream=False, default_max_tokens=512
    )
    assert plain["max_tokens"] == 512 and "system" not in plain


def test_anthropic_usage_adds_cache_reads_and_writes_to_input() -> None:
    usage = anthropic_wire.parse_usage(
        {
            "input_tokens": 10,
            "cache_read_input_tokens": 200,
            "cache_creation_input_tokens": 50,
            "output_tokens": 7,
        }
    )
    assert usage == TokenUsage(
        input_tokens=260, output_tokens=7, cached_input_tokens=200, cache_write_tokens=50
    )


def test_anthropic_completion_separates_thinking() -> None:
    completion = anthropic_wire.parse_completion(
        {
            "model": "claude-sonnet-4-5",
            "content": [
                {"type": "thinking", "thinking": "plan"},
                {"type": "text", "text": "Done."},
            ],
            "stop_reason": "max_tokens",
            "usage": {"input_tokens": 3, "output_tokens": 4},
        }
    )
    assert (completion.text, completion.reasoning_text) == ("Done.", "plan")
    assert completion.finish_reason is FinishReason.LENGTH


def _ev(name: str, **data: object) -> SseEvent:
    return SseEvent(name, json.dumps({"type": name, **data}))


def test_anthropic_stream_takes_cumulative_usage_from_message_delta() -> None:
    fold = anthropic_wire.AnthropicStream()
    seq = [
        _ev(
            "message_start",
            message={
                "model": "claude-x",
                "usage": {"input_tokens": 5, "cache_read_input_tokens": 10, "output_tokens": 1},
            },
        ),
        _ev("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}),
        _ev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "hm"}),
        _ev("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "x"}),
        _ev("ping"),
        _ev("content_block_delta", index=1, delta={"type": "text_delta", "text": "Yes"}),
        _ev("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 12}),
        _ev("message_stop"),
    ]
    got = [d for e in seq if (d := fold.feed(e)) is not None]
    assert got == [StreamDelta(reasoning_text="hm"), StreamDelta("Yes")]
    end = fold.end()
    assert end.usage == TokenUsage(input_tokens=15, output_tokens=12, cached_input_tokens=10)
    assert end.finish_reason is FinishReason.STOP and end.model == "claude-x"


def test_anthropic_stream_error_event_and_early_end() -> None:
    fold = anthropic_wire.AnthropicStream()
    fold.feed(_ev("message_start", message={"model": "m", "usage": {"input_tokens": 1}}))
    with pytest.raises(StreamIncomplete):
        fold.end()
    with pytest.raises(UpstreamStreamError) as info:
        fold.feed(
            SseEvent(
                "error",
                json.dumps(
                    {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"},
                    }
                ),
            )
        )
    assert info.value.http_status == 529 and info.value.kind == "overloaded_error"
    with pytest.raises(WireError, match="message_start"):
        bare = anthropic_wire.AnthropicStream()
        bare.feed(_ev("message_stop"))
        bare.end()


def test_sse_bytes_split_anywhere_give_the_same_events() -> None:
    body = 'event: a\r\ndata: {"t": "h\u00e9llo"}\r\n\r\ndata: [DONE]\n\n'.encode()
    whole = SseDecoder().feed_bytes(body)
    assert whole == [SseEvent("a", '{"t": "h\u00e9llo"}'), SseEvent("message", "[DONE]")]
    for cut in range(1, len(body)):
        decoder = SseDecoder()
        assert decoder.feed_bytes(body[:cut]) + decoder.feed_bytes(body[cut:]) == whole
    decoder = SseDecoder()
    assert decoder.feed_bytes(b"data: tail") == []
    assert decoder.flush() == SseEvent("message", "tail")


def test_json_nested_beyond_pythons_limit_is_a_wire_error() -> None:
    with pytest.raises(WireError, match="invalid JSON"):
        wire.load_json(b"[" * 100_000)
