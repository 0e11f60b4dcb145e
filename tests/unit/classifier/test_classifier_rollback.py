"""`switchyard-classifier rollback`: what it refuses, and that a refusal changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from switchyard.classifier.model import MANIFEST_NAME, MODEL_FILE, SHIPPED_MODEL_DIR
from switchyard.training.promotion import PREVIOUS_DIR, install, rollback_main


@pytest.fixture
def serving(tmp_path: Path) -> Path:
    directory = tmp_path / "serving"
    shutil.copytree(SHIPPED_MODEL_DIR, directory)
    return directory


def test_nothing_to_roll_back_to_is_exit_2(
    serving: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (serving / MANIFEST_NAME).read_bytes()
    assert rollback_main(["--serving", str(serving)]) == 2
    assert "no previous model kept" in capsys.readouterr().err
    assert (serving / MANIFEST_NAME).read_bytes() == before


def test_a_kept_model_that_does_not_load_is_refused_and_nothing_moves(
    serving: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(SHIPPED_MODEL_DIR, candidate)
    manifest = json.loads((candidate / MANIFEST_NAME).read_text())
    manifest["version"] = "candidate-1"
    (candidate / MANIFEST_NAME).write_text(json.dumps(manifest))
    install(candidate, serving, {"test": True})
    assert json.loads((serving / PREVIOUS_DIR / MANIFEST_NAME).read_text())["version"] != (
        "candidate-1"
    )
    (serving / PREVIOUS_DIR / MODEL_FILE).write_bytes(b"corrupt")  # its hash no longer matches
    before = (serving / MANIFEST_NAME).read_bytes()
    assert rollback_main(["--serving", str(serving)]) == 2
    assert "cannot roll back" in capsys.readouterr().err
    assert (serving / MANIFEST_NAME).read_bytes() == before
    assert json.loads(before)["version"] == "candidate-1"
