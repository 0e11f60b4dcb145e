"""The shipped recipe's pure parts: boilerplate rewriting, source balancing, user-voice prompts."""

from __future__ import annotations

import numpy as np

from switchyard.classifier.taxonomy import TASK_TYPE_NAMES
from switchyard.training.augment import neutralise
from switchyard.training.balance import balanced_weights, source_of
from switchyard.training.data import LabeledPrompt
from switchyard.training.voices import VOICE_PROMPTS, voice_prompts

BBH = "Is the sentence plausible?\nOptions:\n- Yes\n- No"
MBPP = (
    "Write a function to add two numbers.\nYour code should pass these tests:\n\n"
    "assert add(1, 2) == 3"
)
DEBUG = (
    "The following Python code is supposed to solve this problem but contains a bug. "
    "Find and fix it.\n\nReturn the sum of a list."
)


def rewritten(group: str, prompt: str) -> list[str]:
    return [neutralise(f"{group}/{i}", group, prompt) for i in range(40)]


def test_about_half_of_the_rows_lose_their_boilerplate() -> None:
    bbh = rewritten("bbh/sports_understanding", BBH)
    assert set(bbh) == {BBH, "Is the sentence plausible?"}
    assert 10 <= bbh.count(BBH) <= 30
    mbpp = rewritten("mbpp", MBPP)
    assert set(mbpp) == {MBPP, "Write a function to add two numbers."}
    debug = rewritten("debugbench", DEBUG)
    changed = [d for d in debug if d != DEBUG]
    assert changed and all(d.endswith("Return the sum of a list.") for d in changed)
    assert all("supposed to solve this problem" not in d for d in changed)
    assert all("Python" in d or "python" in d for d in changed)


MMLU = "Which organ filters the blood?\nA. Heart\nB. Kidney\nC. Lung\nD. Skin\nAnswer:"


def test_mmlu_questions_lose_their_one_layout() -> None:
    mmlu = rewritten("mmlu/anatomy", MMLU)
    changed = [m for m in mmlu if m != MMLU]
    assert 10 <= len(changed) <= 30  # about half, as the other sources
    assert len(set(changed)) >= 4  # several layouts, not one new fixed one
    assert all(m.startswith(("Which organ", "Which is correct? Which organ")) for m in changed)
    assert all("Answer:" not in m for m in changed)
    # the options survive where a layout keeps them, and some rows keep the question alone
    assert "Which organ filters the blood?" in changed
    assert all(("Kidney" in m) or m == "Which organ filters the blood?" for m in changed)
    assert rewritten("mmlu/anatomy", "no options here") == ["no options here"] * 40


def test_rewriting_is_deterministic_and_leaves_other_sources_alone() -> None:
    assert rewritten("bbh/navigate", BBH) == rewritten("bbh/navigate", BBH)
    assert set(rewritten("simpleqa", BBH)) == {BBH}
    assert set(rewritten("authored/voice_chat/3", MBPP)) == {MBPP}


def row(task: str, group: str) -> LabeledPrompt:
    return LabeledPrompt(f"{group}/{task}", "text", task, None, group)


def test_each_task_type_and_each_source_within_it_weigh_the_same() -> None:
    rows = [row("chat", "simpleqa")] * 6 + [row("chat", "authored/voice_chat/1")] * 2
    rows += [row("math", "gsm8k_train")] * 4
    w = balanced_weights(rows)
    assert np.isclose(w.mean(), 1.0)
    assert np.isclose(w[:6].sum(), w[6:8].sum())  # two chat sources, equal shares
    assert np.isclose(w[:8].sum(), w[8:].sum())  # two task types, equal totals
    assert source_of("authored/voice_chat/1") == source_of("authored/voice_math/0")
    assert source_of("p3/xsum_DOC_tldr") == "p3/xsum_DOC_tldr"
    assert source_of("bbh/navigate") == "bbh"


def test_voice_prompts_are_labelled_unique_and_marked_as_ours() -> None:
    items = list(voice_prompts())
    assert len(items) == sum(len(v) for v in VOICE_PROMPTS.values())
    assert len({i.prompt for i in items}) == len(items)
    assert all(i.id.startswith("authored/voice_") and i.group == i.id for i in items)
    assert all(i.task_type in TASK_TYPE_NAMES for i in items)
