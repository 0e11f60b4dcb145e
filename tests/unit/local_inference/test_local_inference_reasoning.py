"""ReasoningSplit with vLLM's real DeepSeek-R1 parser (a tiny vocabulary stands in for the
32B model's tokenizer: the parser only needs the ids of `<think>` and `</think>`)."""

from __future__ import annotations

import pytest

from switchyard.local_inference.reasoning import ReasoningSplit

pytestmark = [
    pytest.mark.filterwarnings(r"ignore::DeprecationWarning:torch(\..*)?"),
    pytest.mark.filterwarnings(r"ignore::FutureWarning:torch(\..*)?"),
    pytest.mark.filterwarnings(r"ignore::DeprecationWarning:transformers(\..*)?"),
    pytest.mark.filterwarnings(r"ignore::DeprecationWarning:vllm(\..*)?"),
]

THINK, END_THINK = 900, 901


class TinyTokenizer:
    def get_vocab(self) -> dict[str, int]:
        return {"<think>": THINK, "</think>": END_THINK, "a": 1, "b": 2}


@pytest.fixture(scope="module")
def r1_parser_cls():  # type: ignore[no-untyped-def]
    from vllm.reasoning import ReasoningParserManager

    return ReasoningParserManager.get_reasoning_parser("deepseek_r1")


def feed_all(split: ReasoningSplit, deltas: list[tuple[str, list[int]]]) -> tuple[str, str]:
    reasoning, answer = [], []
    for text, ids in deltas:
        r, a = split.feed(text, ids)
        reasoning.append(r)
        answer.append(a)
    return "".join(reasoning), "".join(answer)


def test_without_parser_everything_is_answer() -> None:
    split = ReasoningSplit(None)
    assert feed_all(split, [("Hello", [1]), (" world", [2])]) == ("", "Hello world")
    assert split.reasoning_tokens() == 0


def test_r1_output_without_start_token(r1_parser_cls) -> None:  # type: ignore[no-untyped-def]
    # R1-distill chat templates end the prompt with "<think>\n": the output starts inside it.
    split = ReasoningSplit(r1_parser_cls(TinyTokenizer()))
    deltas = [
        ("Let me", [1, 2]),
        (" think.", [1]),
        ("</think>", [END_THINK]),
        ("\n\nParis", [2, 1]),
        (".", [2]),
    ]
    reasoning, answer = feed_all(split, deltas)
    assert reasoning == "Let me think."
    assert answer == "\n\nParis."
    assert split.reasoning_tokens() == 4  # 3 thinking tokens + the end marker


def test_r1_output_with_both_markers(r1_parser_cls) -> None:  # type: ignore[no-untyped-def]
    split = ReasoningSplit(r1_parser_cls(TinyTokenizer()))
    deltas = [
        ("<think>", [THINK]),
        ("hmm", [1]),
        ("</think>", [END_THINK]),
        ("Yes", [2]),
    ]
    assert feed_all(split, deltas) == ("hmm", "Yes")
    assert split.reasoning_tokens() == 3


def test_reasoning_cut_by_max_tokens_is_all_reasoning(r1_parser_cls) -> None:  # type: ignore[no-untyped-def]
    split = ReasoningSplit(r1_parser_cls(TinyTokenizer()))
    assert feed_all(split, [("still", [1]), (" thinking", [2, 1])]) == ("still thinking", "")
    assert split.reasoning_tokens() == 3


def test_unknown_parser_name_is_reported() -> None:
    from vllm.reasoning import ReasoningParserManager

    with pytest.raises(KeyError, match="not found"):
        ReasoningParserManager.get_reasoning_parser("no_such_parser")
