"""The shipped model: integrity, size, accuracy on a fixed held-out sample and on unseen sources.

`data/heldout_sample.jsonl` holds 230 rows drawn (seed 11) from the build's held-out split,
which the build never fits or tunes on: up to 25 per task type.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from switchyard.classifier.model import (
    MANIFEST_NAME,
    MODEL_FILE,
    SHIPPED_MODEL_DIR,
    ClassifierModel,
)
from switchyard.classifier.taxonomy import TASK_TYPE_NAMES
from switchyard.training.metrics import confusion, per_class_precision_recall_f1

SAMPLE = Path(__file__).parent / "data" / "heldout_sample.jsonl"
MACRO_F1_FLOOR = 0.85


@pytest.fixture(scope="module")
def model() -> ClassifierModel:
    return ClassifierModel(SHIPPED_MODEL_DIR)


def test_manifest_describes_the_shipped_files(model: ClassifierModel) -> None:
    manifest = json.loads((SHIPPED_MODEL_DIR / MANIFEST_NAME).read_text())
    assert manifest["task_types"] == list(TASK_TYPE_NAMES)
    assert (SHIPPED_MODEL_DIR / MODEL_FILE).stat().st_size <= 30 * 1024 * 1024
    assert model.version == f"{manifest['name']}@{manifest['files'][MODEL_FILE][:12]}"


def test_accuracy_on_fixed_held_out_sample(model: ClassifierModel) -> None:
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    predictions = []
    for start in range(0, len(rows), 32):
        predictions += model.predict([r["prompt"] for r in rows[start : start + 32]])
    truth = np.array([TASK_TYPE_NAMES.index(r["task_type"]) for r in rows])
    pred = np.array([int(np.argmax(p.task_probabilities)) for p in predictions])
    _, _, f1 = per_class_precision_recall_f1(confusion(truth, pred, len(TASK_TYPE_NAMES)))
    macro_f1 = float(f1.mean())
    assert macro_f1 >= MACRO_F1_FLOOR, f"macro-F1 {macro_f1:.3f} on the fixed held-out sample"


FRESH = Path(__file__).parent / "data" / "unseen_fresh.jsonl"
# Prompts from sources the model never trains on, labelled before any tuning (data/README.md):
# a fixed sample per left-out source (arena-hard: real Chatbot Arena users; self-instruct
# user-oriented: instructions for real apps). Floors a few points under what the shipped model
# scores (model card: v2.6 0.769, arena-hard 0.78, self-instruct 0.76); v1 scored 0.538 overall
# (0.54 / 0.54), v2 0.670 (0.73 / 0.62), v2.1 0.692 (0.73 / 0.66), v2.4 0.725 (0.76 / 0.70).
UNSEEN_ACCURACY_FLOOR = 0.74
UNSEEN_SOURCE_FLOORS = {"arena_hard_v0.1": 0.75, "self_instruct_user_oriented": 0.72}
OURS = Path(__file__).parent / "data" / "unseen_ours.jsonl"
# Set 3, the project's prompts in the formats issue 14 names (data/README.md): v2 0.875, v2.1
# 0.962, v2.4 0.933, v2.6 0.942 (its author also wrote v2.1's second-source training prompts, so it
# flatters v2.1 and later).
OURS_ACCURACY_FLOOR = 0.90
REAL_USERS = Path(__file__).parent / "data" / "unseen_real_users.jsonl"
# Set 4: every other labelled row of the same two real-user datasets (482 prompts, labelled by
# written rules before any model output was seen; data/README.md). The shipped model (v2.6)
# scores 0.714 (arena-hard 0.739 of 353, self-instruct 0.643 of 129): floors a few points
# under. v2.1 scored 0.660 (0.711 / 0.519), v2.4 0.685 (0.714 / 0.605).
REAL_USERS_ACCURACY_FLOOR = 0.69
REAL_USERS_SOURCE_FLOORS = {"arena_hard_v0.1": 0.71, "self_instruct_user_oriented": 0.61}


def _scored(model: ClassifierModel, path: Path) -> tuple[list[dict[str, str]], list[bool]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    predictions = model.predict([r["prompt"] for r in rows])
    names = model.manifest.task_types
    correct = [
        names[int(np.argmax(p.task_probabilities))] == r["task_type"]
        for p, r in zip(predictions, rows, strict=True)
    ]
    return rows, correct


def _assert_source_floors(
    rows: list[dict[str, str]], correct: list[bool], floors: dict[str, float], *, min_rows: int
) -> None:
    for source, floor in floors.items():
        mine = [c for c, r in zip(correct, rows, strict=True) if r["id"].startswith(source + "/")]
        assert len(mine) >= min_rows
        assert np.mean(mine) >= floor, f"{source}: {np.mean(mine):.3f} on {len(mine)} prompts"


def test_accuracy_on_unseen_sources_above_floor(model: ClassifierModel) -> None:
    rows, correct = _scored(model, FRESH)
    accuracy = float(np.mean(correct))
    assert accuracy >= UNSEEN_ACCURACY_FLOOR, f"accuracy {accuracy:.3f} on {len(rows)} prompts"
    _assert_source_floors(rows, correct, UNSEEN_SOURCE_FLOORS, min_rows=30)


def test_accuracy_on_the_projects_unseen_formats_above_floor(model: ClassifierModel) -> None:
    rows, correct = _scored(model, OURS)
    assert len(rows) >= 100
    accuracy = float(np.mean(correct))
    assert accuracy >= OURS_ACCURACY_FLOOR, f"accuracy {accuracy:.3f} on {len(rows)} prompts"


def test_accuracy_on_real_users_prompts_above_floor(model: ClassifierModel) -> None:
    rows, correct = _scored(model, REAL_USERS)
    assert len(rows) >= 450
    accuracy = float(np.mean(correct))
    assert accuracy >= REAL_USERS_ACCURACY_FLOOR, f"accuracy {accuracy:.3f} on {len(rows)} prompts"
    _assert_source_floors(rows, correct, REAL_USERS_SOURCE_FLOORS, min_rows=100)


GREETINGS = ["hello", "hi there!", "thanks!", "good morning :)", "hey, how are you?"]
# Hard problems of several kinds (written for this test; none is in the training data).
HARD = [
    "Let G be a finite group and H a subgroup of index 2. Prove that H is normal in G.",
    "Find all functions f: R -> R with f(x + y) + f(x - y) = 2 f(x) cos(y) for all real x, y.",
    "Prove that a ring in which x^2 = x for every x is commutative.",
    "How many ordered triples of positive integers (a, b, c) satisfy a + b + c = 20 and "
    "a < b < c? Justify your count.",
    "A uniform rod of length L pivots about one end and is released from horizontal. Derive the "
    "angular velocity as a function of angle and the reaction force at the pivot.",
    "Implement a lock-free multi-producer multi-consumer queue in C++ with std::atomic, "
    "explain the ABA problem and how your design avoids it.",
    "Evaluate the integral of x^2 e^(-x) sin(x) from 0 to infinity and show every step.",
]


def test_greetings_score_below_hard_problems(model: ClassifierModel) -> None:
    hard = [p.escalation for p in model.predict(HARD)]
    median = float(np.median(hard))
    for text, p in zip(GREETINGS, model.predict(GREETINGS), strict=True):
        assert p.escalation < median, f"{text!r}: {p.escalation:.3f} >= median {median:.3f}"
        assert model.manifest.task_types[int(np.argmax(p.task_probabilities))] == "chat", text
