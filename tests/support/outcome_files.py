"""Outcome files in the exported format (docs/services/outcomes.md), for training tests."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["export_row", "mmlu_rows", "write_jsonl"]


def export_row(
    request_id: str,
    prompt: str | None,
    local_ok: bool | None,
    frontier_ok: bool | None,
    *,
    served: str = "LOCAL",
    task_type: str = "QUESTION_ANSWERING",
) -> dict[str, object]:
    """One line as `switchyard outcomes export` writes it: every key, `prompt` only if given."""
    partial = local_ok is None or frontier_ok is None
    row: dict[str, object] = {
        "id": request_id,
        "time": "2026-06-15T12:00:00.123000+00:00",
        "tenant": "acme",
        "task_type": task_type,
        "complexity": 0.4,
        "escalation_score": 0.3,
        "classifier_model_version": "switchyard-minilm-int8@000000000000",
        "prompt_chars": len(prompt or "x"),
        "input_tokens": 42,
        "served": served,
        "local_model": None if local_ok is None else "qwen",
        "frontier_model": None if frontier_ok is None else "gpt",
        "local_ok": local_ok,
        "frontier_ok": frontier_ok,
        "partial": partial,
        "source": "feedback" if partial else "judge",
        "sample_share": None if partial else 0.5,
        "judge": None if partial else {"verdict": "TIE", "model": "judge", "orders": ["", ""]},
        "feedback": {"verdict": "GOOD", "reason": ""} if partial else None,
    }
    if prompt is not None:
        row["prompt"] = prompt
    return row


def mmlu_rows(path: Path, subjects: set[str] | None = None) -> list[dict[str, object]]:
    """The shipped MMLU outcome rows (of some subjects), in file order."""
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return [r for r in rows if subjects is None or r["subject"] in subjects]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
