"""Formats derived from dataset rows, and where training finds its data."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.training.cli import DATA_DIR_ENV, main, resolve_data_dir
from switchyard.training.data import held_out
from switchyard.training.formats import derived_rows, split_key
from switchyard.training.records import LabeledPrompt

BUGGY = (
    "The following Python code is supposed to solve this problem but contains a bug. "
    "Find and fix it.\n\nReturn the sum of a list of numbers.\n\n"
    "```python\ndef total(xs):\n    return sum(xs) + 1\n```"
)
ARTICLE = "Sum the following article in brief: " + "The council met on Tuesday. " * 30


def debug_rows(n: int) -> list[LabeledPrompt]:
    return [
        LabeledPrompt(f"debugbench/{i}", BUGGY, "code_review", 0.5, "debugbench") for i in range(n)
    ]


def test_fix_code_keeps_the_code_and_drops_the_statement() -> None:
    made = list(derived_rows(debug_rows(40)))
    assert 8 <= len(made) <= 32  # about half
    for row in made:
        assert row.task_type == "code_review" and row.group == "derived/fix_code"
        assert "return sum(xs) + 1" in row.prompt
        assert "Return the sum of a list" not in row.prompt
        assert "supposed to solve this problem" not in row.prompt


def test_document_asks_decide_the_task_and_keep_the_split() -> None:
    rows = [
        LabeledPrompt(
            f"p3/cnn/{i}", ARTICLE, "summarization", 0.25, "p3/cnn_dailymail_3_0_0_sum_in_brief"
        )
        for i in range(60)
    ]
    made = list(derived_rows(rows))
    assert len(made) == 60
    assert {r.task_type for r in made} == {
        "summarization",
        "extraction",
        "classification",
        "creative_writing",
    }
    for row, original in zip(made, rows, strict=True):
        assert "Sum the following article" not in row.prompt
        assert "The council met on Tuesday." in row.prompt
        # a derived row is held out exactly when its original is
        assert split_key(row) == original.id
        assert held_out(split_key(row), 15) == held_out(split_key(original), 15)


def test_training_without_a_data_dir_names_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "missing"))
    assert main(["--out", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert "--data-dir" in err and DATA_DIR_ENV in err and str(tmp_path / "missing") in err
    monkeypatch.setattr("switchyard.training.cli.default_data_dir", lambda: None)
    with pytest.raises(ValueError, match="--data-dir"):
        resolve_data_dir(None)
    (tmp_path / "prompts").mkdir()
    assert resolve_data_dir(tmp_path) == tmp_path


def test_a_long_prompt_keeps_its_head_and_its_ask() -> None:
    from switchyard.classifier.model import SHIPPED_MODEL_DIR, TOKENIZER_FILE, PromptTokenizer

    tokenizer = PromptTokenizer(SHIPPED_MODEL_DIR / TOKENIZER_FILE, 256, 128)
    ask = "now summarise all of that in two sentences"
    text = "Dear team, " + "the quarterly numbers were fine. " * 200 + ask
    ((ids, truncated),) = tokenizer.encode_each([text])
    assert truncated and len(ids) == 256
    reference = PromptTokenizer(SHIPPED_MODEL_DIR / TOKENIZER_FILE, 4096)
    full, _ = reference.encode_each([text])[0]
    assert ids[:128] == full[:128] and ids[128:] == full[-128:]  # [CLS] first, [SEP] last
    ((short, cut),) = tokenizer.encode_each([ask])
    assert not cut and short == reference.encode_each([ask])[0][0]
    with pytest.raises(ValueError, match="head_tokens"):
        PromptTokenizer(SHIPPED_MODEL_DIR / TOKENIZER_FILE, 256, 256)
