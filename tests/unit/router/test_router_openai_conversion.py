"""The OpenAI door's pure conversions: request body -> router request, router answer -> OpenAI
shapes (checked against the published response models), and the one error table."""

from __future__ import annotations

import json

import grpc
import pytest

from switchyard.api.classifier.v1 import classifier_pb2
from switchyard.api.inference.v1 import inference_pb2
from switchyard.api.router.v1 import router_pb2
from switchyard.router.openai.conversion import (
    ModelNames,
    RequestRefused,
    completion_body,
    content_chunk,
    error_reply,
    finish_chunk,
    first_chunk,
    model_list,
    parse_request,
    to_router_request,
    usage_chunk,
)
from switchyard.router.openai.openapi import CHAT_ERRORS, openapi_document
from switchyard.router.openai.schema import ChatCompletion, ChatCompletionChunk, ModelList
from switchyard.runtime.errors import (
    BudgetExceeded,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    SwitchyardError,
    Unauthenticated,
    Unavailable,
)
from switchyard.runtime.http_errors import HTTP_ERRORS, http_error

NAMES = ModelNames("switchyard/auto", ("local-general", "frontier-general"))


def body(**fields: object) -> bytes:
    data: dict[str, object] = {
        "model": "switchyard/auto",
        "messages": [{"role": "user", "content": "hi"}],
    }
    data.update(fields)
    return json.dumps(data).encode()


def convert(**fields: object) -> router_pb2.CompleteRequest | router_pb2.CompleteStreamRequest:
    return to_router_request(parse_request(body(**fields)), NAMES)


# ---- requests --------------------------------------------------------------------------------


def test_routed_model_lets_the_policy_decide_and_a_target_name_forces_it() -> None:
    assert convert().routing.force_target == ""
    assert convert(model="frontier-general").routing.force_target == "frontier-general"


def test_unknown_model_is_not_found_naming_the_known_ones() -> None:
    with pytest.raises(NotFound) as caught:
        convert(model="gpt-5")
    assert "'gpt-5'" in caught.value.message and "switchyard/auto" in caught.value.message
    assert error_reply(caught.value).status == 404
    assert error_reply(caught.value).body["error"]["code"] == "model_not_found"


def test_messages_roles_and_text_parts_become_chat_messages() -> None:
    request = convert(
        messages=[
            {"role": "developer", "content": "be brief"},
            {"role": "system", "content": "really"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            {"role": "assistant", "content": "ok", "name": "bot"},
        ]
    )
    assert [(m.role, m.content) for m in request.messages] == [
        (inference_pb2.ROLE_SYSTEM, "be brief"),
        (inference_pb2.ROLE_SYSTEM, "really"),
        (inference_pb2.ROLE_USER, "a\nb"),
        (inference_pb2.ROLE_ASSISTANT, "ok"),
    ]


def test_sampling_fields_are_carried_and_unset_ones_stay_unset() -> None:
    p = convert(max_tokens=7, temperature=0.5, top_p=0.9, stop="END", seed=42, n=1, user="u1")
    assert p.parameters.max_tokens == 7
    assert p.parameters.temperature == pytest.approx(0.5)
    assert p.parameters.top_p == pytest.approx(0.9)
    assert list(p.parameters.stop) == ["END"]
    assert p.parameters.seed == 42
    bare = convert().parameters
    for name in ("max_tokens", "temperature", "top_p", "seed"):
        assert not bare.HasField(name)
    assert convert(max_completion_tokens=9, stop=["a", "b"]).parameters.max_tokens == 9
    assert list(convert(stop=["a", "b"]).parameters.stop) == ["a", "b"]


def test_stream_flag_picks_the_streaming_request() -> None:
    assert isinstance(convert(stream=True), router_pb2.CompleteStreamRequest)
    assert isinstance(convert(stream=False), router_pb2.CompleteRequest)


def test_routing_extension_becomes_routing_options() -> None:
    options = convert(
        switchyard={"escalation_threshold": 0.3, "disallow_frontier": True, "max_cost_usd": 0.01}
    ).routing
    assert options.escalation_threshold == pytest.approx(0.3)
    assert options.disallow_frontier is True
    assert options.max_cost_usd == pytest.approx(0.01)
    assert not convert().routing.HasField("escalation_threshold")


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "tool calling"),
        ({"n": 2}, "n", "n = 1"),
        ({"logprobs": True}, "logprobs", "log probabilities"),
        ({"response_format": {"type": "json_object"}}, "response_format", "response_format"),
        ({"presence_penalty": 0.5}, "presence_penalty", "presence_penalty"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content",
            "",
        ),
        ({"messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}]}, "messages[0]", ""),
        ({"messages": []}, "messages", "at least 1"),
        ({"temperature": 3}, "temperature", "less than or equal to 2"),
        ({"max_tokens": 0}, "max_tokens", "greater than or equal to 1"),
        ({"max_tokens": 5, "max_completion_tokens": 6}, None, "disagree"),
        ({"switchyard": {"escalation_threshold": 1.5}}, "switchyard.escalation_threshold", ""),
        ({"temprature": 0.1}, "temprature", "unrecognized request argument"),
    ],
)
def test_what_the_door_cannot_honour_is_refused_naming_the_field(
    fields: dict[str, object], param: str | None, words: str
) -> None:
    with pytest.raises(RequestRefused) as caught:
        parse_request(body(**fields))
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
    if param is not None:
        assert caught.value.param is not None and caught.value.param.startswith(param)
    assert words in caught.value.message
    reply = error_reply(caught.value)
    assert reply.status == 400
    assert reply.body["error"]["type"] == "invalid_request_error"


def test_defaults_that_mean_off_are_accepted() -> None:
    parse_request(
        body(
            n=1,
            logprobs=False,
            presence_penalty=0,
            frequency_penalty=0.0,
            tools=[],
            tool_choice="none",
        )
    )


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'"x"', b"\xff\xfe"])
def test_bodies_that_are_not_a_json_object_are_refused(raw: bytes) -> None:
    with pytest.raises(RequestRefused):
        parse_request(raw)


# ---- responses -------------------------------------------------------------------------------


def decision() -> router_pb2.RoutingDecision:
    return router_pb2.RoutingDecision(
        target="local-general",
        target_kind=router_pb2.TARGET_KIND_LOCAL,
        backend="local-inference",
        model="smol",
        reason=router_pb2.DECISION_REASON_BELOW_THRESHOLD,
        reason_detail="score 0.10 < threshold 0.50",
        escalation_score=0.1,
        escalation_threshold=0.5,
        estimated_cost_usd=1e-6,
        classification=classifier_pb2.Classification(
            task_type=classifier_pb2.TASK_TYPE_CHAT, complexity_score=0.25
        ),
    )


def cost() -> router_pb2.CostBreakdown:
    return router_pb2.CostBreakdown(
        hops=[
            router_pb2.Hop(
                kind=router_pb2.HOP_KIND_CLASSIFY, service="classifier", status="OK", cost_usd=1e-7
            ),
            router_pb2.Hop(
                kind=router_pb2.HOP_KIND_GENERATE,
                service="local-inference",
                target="local-general",
                model="smol",
                status="OK",
                latency_ms=12.5,
                cost_usd=2e-6,
                input_tokens=9,
                output_tokens=3,
            ),
        ],
        total_cost_usd=2.1e-6,
        total_latency_ms=14.0,
    )


def usage() -> inference_pb2.Usage:
    return inference_pb2.Usage(input_tokens=9, output_tokens=3, reasoning_tokens=1, cost_usd=2e-6)


def test_completion_carries_text_usage_decision_and_per_hop_cost() -> None:
    response = router_pb2.CompleteResponse(
        request_id="abc",
        text="hello",
        finish_reason=inference_pb2.FINISH_REASON_LENGTH,
        usage=usage(),
        decision=decision(),
        cost=cost(),
    )
    out = completion_body(response, created=1_700_000_000)
    ChatCompletion.model_validate(out)
    assert (
        out["id"] == "chatcmpl-abc" and out["model"] == "smol" and out["created"] == 1_700_000_000
    )
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "hello"}
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["usage"]["prompt_tokens"] == 9 and out["usage"]["total_tokens"] == 12
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 1}
    sy = out["switchyard"]
    assert sy["request_id"] == "abc"
    assert sy["decision"]["target"] == "local-general"
    assert sy["decision"]["target_kind"] == "LOCAL"
    assert sy["decision"]["reason"] == "BELOW_THRESHOLD"
    assert sy["decision"]["task_type"] == "CHAT"
    assert sy["decision"]["escalation_score"] == pytest.approx(0.1)
    assert [h["kind"] for h in sy["hops"]] == ["CLASSIFY", "GENERATE"]
    assert sy["hops"][1]["latency_ms"] == 12.5
    assert sy["total_cost_usd"] == pytest.approx(2.1e-6)


def test_reasoning_text_is_kept_apart() -> None:
    response = router_pb2.CompleteResponse(
        request_id="r", text="4", reasoning_text="2+2", decision=decision(), cost=cost()
    )
    message = completion_body(response, 0)["choices"][0]["message"]
    assert message["reasoning_content"] == "2+2" and message["content"] == "4"


def test_a_decision_without_classification_has_no_task_type() -> None:
    d = decision()
    d.ClearField("classification")
    out = first_chunk("r", 0, d)["switchyard"]["decision"]
    assert out["task_type"] == "" and out["complexity"] is None


def test_stream_chunks_decision_first_cost_last() -> None:
    summary = router_pb2.CompleteStreamSummary(
        request_id="r1",
        finish_reason=inference_pb2.FINISH_REASON_STOP,
        usage=usage(),
        decision=decision(),
        cost=cost(),
    )
    first = first_chunk("r1", 5, decision())
    delta = content_chunk("r1", 5, "smol", inference_pb2.TextDelta(text="hel"))
    end = finish_chunk(5, summary, last=True)
    end_then_usage = finish_chunk(5, summary, last=False)
    last = usage_chunk(5, summary)
    for chunk in (first, delta, end, end_then_usage, last):
        ChatCompletionChunk.model_validate(chunk)
        assert chunk["id"] == "chatcmpl-r1"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert first["switchyard"]["decision"]["target"] == "local-general"
    assert "total_cost_usd" not in first["switchyard"]
    assert delta["choices"][0]["delta"] == {"content": "hel"} and "switchyard" not in delta
    assert end["choices"][0]["finish_reason"] == "stop"
    assert end["switchyard"]["total_cost_usd"] == pytest.approx(2.1e-6)
    assert "switchyard" not in end_then_usage  # the usage chunk is last and carries the cost
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 3
    assert last["switchyard"]["hops"][1]["cost_usd"] == pytest.approx(2e-6)


def test_model_list_is_routed_name_then_targets() -> None:
    listing = model_list(NAMES)
    ModelList.model_validate(listing)
    assert [m["id"] for m in listing["data"]] == [
        "switchyard/auto",
        "local-general",
        "frontier-general",
    ]


def test_openapi_document_lists_the_configured_models_and_every_error_status() -> None:
    doc = openapi_document(NAMES)
    request = doc["components"]["schemas"]["ChatCompletionRequest"]
    assert request["properties"]["model"]["enum"] == [
        "switchyard/auto",
        "local-general",
        "frontier-general",
    ]
    assert request["additionalProperties"] is False
    responses = doc["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert set(CHAT_ERRORS) <= set(responses)
    for status in ("400", "401", "404", "413", "429", "503"):
        assert status in responses
    json.dumps(doc)  # serialisable as published


# ---- the error table -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (InvalidArgument("x"), 400, "invalid_request_error"),
        (FailedPrecondition("x"), 400, "invalid_request_error"),
        (Unauthenticated("x"), 401, "invalid_request_error"),
        (NotFound("x"), 404, "invalid_request_error"),
        (ResourceExhausted("x"), 429, "rate_limit_exceeded"),
        (BudgetExceeded("x"), 429, "insufficient_quota"),
        (Unavailable("x"), 503, "server_error"),
        (DeadlineExceeded("x"), 504, "timeout"),
        (SwitchyardError("x"), 500, "server_error"),
    ],
)
def test_each_error_class_maps_to_the_status_the_sdks_expect(
    error: SwitchyardError, status: int, kind: str
) -> None:
    reply = error_reply(error)
    assert reply.status == status
    assert reply.body["error"]["type"] == kind
    assert reply.body["error"]["message"] == "x"


def test_a_budget_refusal_tells_the_sdks_not_to_retry() -> None:
    reply = error_reply(BudgetExceeded("tenant 'acme' is over its budget: daily hard 1.00"))
    assert ("x-should-retry", "false") in reply.headers
    assert "budget" in reply.body["error"]["message"]
    assert reply.body["error"]["code"] == "insufficient_quota"
    assert error_reply(ResourceExhausted("backend busy")).headers == ()


def test_every_grpc_code_but_ok_has_an_http_status() -> None:
    for code in grpc.StatusCode:
        if code is grpc.StatusCode.OK:
            continue
        assert code in HTTP_ERRORS, code
        assert 400 <= http_error(code).status < 600
    assert http_error(grpc.StatusCode.UNAVAILABLE).status >= 500
