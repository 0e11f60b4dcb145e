"""Validation of bring-your-own label and outcome files: line number and field in every error."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.training.data import (
    DataFileError,
    held_out,
    read_label_file,
    read_outcome_file,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "file.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_label_file(tmp_path: Path) -> None:
    rows = read_label_file(
        write(
            tmp_path,
            (
                '{"prompt": "Sum 2 and 3", "task_type": "math", "complexity": 0.1}\n'
                "\n"
                '{"prompt": "Write a poem", "task_type": "TASK_TYPE_CREATIVE_WRITING"}\n'
            ),
        )
    )
    assert [(r.task_type, r.complexity) for r in rows] == [
        ("math", 0.1),
        ("creative_writing", None),
    ]


def test_label_file_errors_name_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        (
            '{"prompt": "ok", "task_type": "math"}\n'
            '{"prompt": "", "task_type": "math"}\n'
            '{"prompt": "x", "task_type": "poetry"}\n'
            '{"prompt": "x", "task_type": "math", "complexity": 1.5}\n'
            "not json\n"
            '{"prompt": "x", "task_type": "math", "colour": "red"}\n'
            '["a list"]\n'
        ),
    )
    with pytest.raises(DataFileError) as caught:
        read_label_file(path)
    message = str(caught.value)
    assert f"{path}:2: prompt:" in message
    assert f"{path}:3: task_type:" in message and "'poetry'" in message
    assert f"{path}:4: complexity:" in message
    assert f"{path}:5: not valid JSON" in message
    assert f"{path}:6: colour: unknown field" in message
    assert f"{path}:7: expected a JSON object" in message
    assert ":1:" not in message


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no records"):
        read_label_file(write(tmp_path, "\n"))
    with pytest.raises(DataFileError, match="cannot be read"):
        read_outcome_file(tmp_path / "absent.jsonl")


def test_outcome_file(tmp_path: Path) -> None:
    rows = read_outcome_file(
        write(
            tmp_path,
            (
                '{"prompt": "q1", "local_ok": false, "frontier_ok": true, "subject": "law"}\n'
                '{"prompt": "q2", "local_ok": true, "frontier_ok": true}\n'
            ),
        )
    )
    assert [r.escalate for r in rows] == [True, False]
    with pytest.raises(DataFileError) as caught:
        read_outcome_file(
            write(tmp_path, '{"prompt": "q", "local_ok": "yes", "frontier_ok": true}\n')
        )
    assert ":1: local_ok: required, true or false" in str(caught.value)


def test_held_out_split_is_stable_and_about_the_share() -> None:
    keys = [f"row/{i}" for i in range(4000)]
    share = sum(held_out(k, 15) for k in keys) / len(keys)
    assert 0.13 < share < 0.17
    assert [held_out(k, 15) for k in keys] == [held_out(k, 15) for k in keys]
