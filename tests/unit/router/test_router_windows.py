"""Context windows in the policy: a target that cannot hold the prompt is not admissible."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from router_fixtures import BASE

from switchyard.router.config import parse_config
from switchyard.router.conversion import EXCERPT_MARK, classifier_excerpt
from switchyard.router.policy import (
    TOKENS_PER_MESSAGE,
    Classified,
    DecisionReason,
    Overrides,
    PolicyInputs,
    admissible,
    bind,
    decide,
    estimate_window_tokens,
)
from switchyard.router.windows import target_windows
from switchyard.runtime.errors import InvalidArgument

CFG = parse_config(copy.deepcopy(BASE))
#: What the backends report: the local engine's max model length, the frontier catalog's.
LEARNED = {
    "local-general": 2048,
    "local-code": 2048,
    "frontier-general": 128_000,
    "frontier-strong": 128_000,
}


def inputs(
    window_tokens: int,
    *,
    task: str = "CHAT",
    score: float = 0.1,
    output_tokens: int = 256,
    windows: dict[str, int] | None = None,
    **overrides: object,
) -> PolicyInputs:
    return PolicyInputs(
        classification=Classified(task, 0.5, score),
        overrides=Overrides(**overrides),  # type: ignore[arg-type]
        input_tokens=window_tokens,
        output_tokens=output_tokens,
        window_tokens=window_tokens,
        context_windows=LEARNED if windows is None else windows,
    )


def names(decision) -> list[str]:
    return [t.name for t in decision.chain]


def test_a_prompt_the_local_window_cannot_hold_moves_to_the_next_target_that_can() -> None:
    d = decide(CFG, inputs(30_000))  # a 90 KB document, below the escalation threshold
    assert (d.target.name, d.reason) == ("frontier-general", DecisionReason.CONTEXT_WINDOW)
    assert d.target.context_window == 128_000
    assert names(d) == ["frontier-general"]  # local-general is not tried at all
    assert "local-general's context window (2048 tokens)" in d.detail
    assert "moved to frontier-general" in d.detail
    assert d.estimated_cost_usd == pytest.approx((30_000 * 0.15 + 256 * 0.6) / 1e6)


def test_a_prompt_that_fits_keeps_its_reason() -> None:
    d = decide(CFG, inputs(1_500))
    assert (d.target.name, d.reason) == ("local-general", DecisionReason.BELOW_THRESHOLD)
    assert names(d) == ["local-general", "frontier-general"]


def test_the_requested_output_counts_against_the_window() -> None:
    assert decide(CFG, inputs(1_900, output_tokens=148)).target.name == "local-general"
    moved = decide(CFG, inputs(1_900, output_tokens=149))
    assert (moved.target.name, moved.reason) == ("frontier-general", DecisionReason.CONTEXT_WINDOW)


def test_a_fallback_that_cannot_hold_the_prompt_is_skipped() -> None:
    d = decide(CFG, inputs(20_000, task="CODE_GENERATION", score=0.9))
    assert (d.target.name, d.reason) == ("frontier-strong", DecisionReason.ESCALATED)
    # frontier-strong's fallbacks are frontier-general and local-general: only one fits
    assert names(d) == ["frontier-strong", "frontier-general"]
    assert admissible(bind(CFG, "local-general", LEARNED), inputs(20_000)) is not None


def test_a_prompt_no_target_can_hold_is_refused_naming_the_largest_window() -> None:
    with pytest.raises(InvalidArgument) as err:
        decide(CFG, inputs(200_000))
    message = str(err.value)
    assert "largest among local-general and its fallbacks is 128000 tokens (frontier-general)" in (
        message
    )
    assert "about 200000 tokens" in message


def test_a_target_that_would_fit_but_is_excluded_is_named_in_the_refusal() -> None:
    with pytest.raises(InvalidArgument) as err:
        decide(CFG, inputs(30_000, disallow_frontier=True))
    message = str(err.value)
    assert "largest among local-general and its fallbacks is 128000 tokens" in message
    assert "frontier-general would hold it but frontier targets are disallowed" in message


def test_forced_and_default_routes_move_the_same_way() -> None:
    forced = decide(CFG, inputs(30_000, force_target="local-code"))
    assert (forced.target.name, forced.reason) == (
        "frontier-general",
        DecisionReason.CONTEXT_WINDOW,
    )
    assert "the caller forced target local-code" in forced.detail
    down = decide(
        CFG,
        PolicyInputs(
            classification=None, window_tokens=30_000, output_tokens=256, context_windows=LEARNED
        ),
    )
    assert (down.target.name, down.reason) == ("frontier-general", DecisionReason.CONTEXT_WINDOW)
    assert "default route" in down.detail


def test_configured_window_overrides_the_learned_one_and_unknown_is_not_checked() -> None:
    data = copy.deepcopy(BASE)
    data["targets"]["local-general"]["context_window"] = 64_000
    cfg = parse_config(data)
    assert bind(cfg, "local-general", LEARNED).context_window == 64_000
    d = decide(cfg, inputs(30_000))
    assert (d.target.name, d.reason) == ("local-general", DecisionReason.BELOW_THRESHOLD)
    # nothing learned, nothing configured: the window is unknown and the backend decides
    unknown = decide(CFG, inputs(30_000, windows={}))
    assert unknown.target.context_window is None
    assert (unknown.target.name, unknown.reason) == (
        "local-general",
        DecisionReason.BELOW_THRESHOLD,
    )


def test_configured_window_must_be_positive() -> None:
    data = copy.deepcopy(BASE)
    data["targets"]["local-general"]["context_window"] = 0
    with pytest.raises(ValueError, match="targets.local-general.context_window"):
        parse_config(data)


def test_window_estimate_counts_pieces_a_tokenizer_would_make() -> None:
    assert estimate_window_tokens(["abc"]) == 1 + TOKENS_PER_MESSAGE
    assert estimate_window_tokens(["abcd", "abcde"]) == 1 + 2 + 2 * TOKENS_PER_MESSAGE
    # digits and symbols one each, words one per 4 letters, a space before a word free
    assert estimate_window_tokens(["12 apples, 3 pears."]) == 3 + 2 + 4 + 1 + TOKENS_PER_MESSAGE
    assert estimate_window_tokens(["é" * 3]) == 4 + TOKENS_PER_MESSAGE  # 6 bytes at 1.5
    assert estimate_window_tokens(["abcd" * 100], 1.5) == 150 + TOKENS_PER_MESSAGE


def test_window_estimate_does_not_under_count_the_local_models_tokenizer() -> None:
    from tokenizers import Tokenizer

    from switchyard.local_inference.model_preparation import default_model_dir

    tokenizer = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    repo = Path(__file__).resolve().parents[3]
    files = sorted((repo / "docs").rglob("*.md")) + sorted(
        (repo / "services/router/switchyard/router").glob("*.py")
    )
    texts = {str(p.relative_to(repo)): p.read_text(encoding="utf-8") for p in files}
    texts["a 90 KB document"] = "The committee reviewed the quarterly figures. " * 2000
    for name, text in texts.items():
        real = len(tokenizer.encode(text, add_special_tokens=False).ids)
        assert estimate_window_tokens([text]) - TOKENS_PER_MESSAGE >= real, name


def test_learned_windows_per_target_from_what_each_backend_listed() -> None:
    data = copy.deepcopy(BASE)
    data["targets"]["local-general"]["model"] = ""  # the backend's default model
    cfg = parse_config(data)
    local = cfg.backends["local-inference"].address
    frontier = cfg.backends["frontier-proxy"].address
    windows, unknown = target_windows(
        cfg, {local: {"smol-coder": 2048}, frontier: {"gpt-4o-mini": 128_000}}
    )
    # local-general has model "" on a one-model backend: that model's window
    assert windows == {"local-general": 2048, "local-code": 2048, "frontier-general": 128_000}
    assert "lists no context window for 'gpt-4o'" in unknown["frontier-strong"]
    windows, unknown = target_windows(cfg, {frontier: {"gpt-4o": 128_000}})
    assert set(windows) == {"frontier-strong"}
    assert "has not answered ListModels" in unknown["local-general"]


def test_classifier_excerpt_keeps_start_and_end_within_the_limit() -> None:
    short = "CHAT 0.9 hello"
    assert classifier_excerpt(short, 256) == (short, False)
    prompt = "START " + "é" * 200_000 + " THE END"  # 400 KB of two-byte characters
    text, cut = classifier_excerpt(prompt, 16 * 1024)
    assert cut
    assert len(text.encode("utf-8")) <= 16 * 1024
    assert text.startswith("START ") and text.endswith(" THE END")
    assert EXCERPT_MARK in text
    head, tail = text.split(EXCERPT_MARK)
    assert len(head.encode()) > 2 * len(tail.encode())  # most of the budget is the start
    assert set(head[6:]) == {"é"}  # no character was split at the cut
