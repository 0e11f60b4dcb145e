"""Request validation and mapping (pure)."""

from __future__ import annotations

import math

import pytest

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.local_inference.conversion import (
    finish_reason,
    plan_chat,
    resolve_max_tokens,
)
from switchyard.runtime.errors import InvalidArgument, NotFound


def plan(params: pb.GenerationParameters | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
    messages = kwargs.pop("messages", [pb.ChatMessage(role=pb.ROLE_USER, content="hi")])
    return plan_chat(
        str(kwargs.pop("model", "")),
        messages,  # type: ignore[arg-type]
        params or pb.GenerationParameters(),
        served_model="small",
        context_window=1024,
    )


def test_roles_and_defaults() -> None:
    p = plan(
        messages=[
            pb.ChatMessage(role=pb.ROLE_SYSTEM, content="be brief"),
            pb.ChatMessage(role=pb.ROLE_USER, content="hi"),
            pb.ChatMessage(role=pb.ROLE_ASSISTANT, content="hello"),
        ]
    )
    assert p.model == "small"
    assert [m["role"] for m in p.messages] == ["system", "user", "assistant"]
    s = p.sampling
    assert (s.max_tokens, s.temperature, s.top_p, s.stop, s.seed) == (None, None, None, (), None)


def test_parameters_are_carried() -> None:
    s = plan(
        pb.GenerationParameters(max_tokens=7, temperature=0.7, top_p=0.9, stop=["x"], seed=-3)
    ).sampling
    assert s.max_tokens == 7 and s.temperature == 0.7 and s.top_p == 0.9
    assert s.stop == ("x",) and s.seed == -3


def test_named_model_must_be_this_one() -> None:
    assert plan(model="small").model == "small"
    with pytest.raises(NotFound, match="not served here"):
        plan(model="other")


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        (pb.GenerationParameters(max_tokens=0), "max_tokens"),
        (pb.GenerationParameters(max_tokens=1025), "max_tokens"),
        (pb.GenerationParameters(temperature=-0.1), "temperature"),
        (pb.GenerationParameters(temperature=2.01), "temperature"),
        (pb.GenerationParameters(temperature=math.nan), "temperature"),
        (pb.GenerationParameters(top_p=0), "top_p"),
        (pb.GenerationParameters(top_p=1.5), "top_p"),
        (pb.GenerationParameters(stop=["a"] * 9), "at most 8"),
        (pb.GenerationParameters(stop=[""]), "stop[0] is empty"),
        (pb.GenerationParameters(stop=["x" * 300]), "longer than"),
    ],
)
def test_bad_parameters(params: pb.GenerationParameters, fragment: str) -> None:
    with pytest.raises(InvalidArgument, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        plan(params)


def test_every_problem_is_listed() -> None:
    with pytest.raises(InvalidArgument) as caught:
        plan(pb.GenerationParameters(temperature=9, top_p=9))
    assert "temperature" in caught.value.message and "top_p" in caught.value.message


def test_messages_are_required_and_need_roles() -> None:
    with pytest.raises(InvalidArgument, match="at least one"):
        plan(messages=[])
    with pytest.raises(InvalidArgument, match=r"messages\[0\].role"):
        plan(messages=[pb.ChatMessage(content="x")])


def test_max_tokens_against_the_window() -> None:
    window = {"context_window": 100}
    assert resolve_max_tokens(None, prompt_tokens=10, default_max_tokens=50, **window) == 50
    assert resolve_max_tokens(None, prompt_tokens=80, default_max_tokens=50, **window) == 20
    assert resolve_max_tokens(20, prompt_tokens=80, default_max_tokens=5, **window) == 20
    with pytest.raises(InvalidArgument, match="at most 20"):
        resolve_max_tokens(21, prompt_tokens=80, context_window=100, default_max_tokens=5)
    with pytest.raises(InvalidArgument, match="context window is 100"):
        resolve_max_tokens(None, prompt_tokens=100, context_window=100, default_max_tokens=5)


def test_finish_reasons() -> None:
    assert finish_reason("stop") == pb.FINISH_REASON_STOP
    assert finish_reason("length") == pb.FINISH_REASON_LENGTH
    assert finish_reason("abort") == pb.FINISH_REASON_ABORTED
    assert finish_reason(None) == pb.FINISH_REASON_UNSPECIFIED
    assert finish_reason("weird") == pb.FINISH_REASON_UNSPECIFIED
