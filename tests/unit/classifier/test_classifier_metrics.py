"""Metrics used by the model card."""

from __future__ import annotations

import numpy as np

from switchyard.training.metrics import (
    apgr_and_cpt,
    confusion,
    expected_calibration_error,
    per_class_precision_recall_f1,
    spearman,
)


def test_apgr_orders() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    local = rng.random(n) < 0.6
    frontier = local | (rng.random(n) < 0.5)
    gain = frontier.astype(float) - local.astype(float)
    oracle, oracle_cpt = apgr_and_cpt(gain, local, frontier)
    rand, _ = apgr_and_cpt(rng.random(n), local, frontier)
    worst, _ = apgr_and_cpt(-gain, local, frontier)
    assert oracle > 0.9 and oracle_cpt < 0.3
    assert 0.4 < rand < 0.6
    assert worst < 0.1


def test_spearman_and_ties() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(a, a * 10) == 1.0
    assert spearman(a, -a) == -1.0
    assert abs(spearman(np.array([1, 1, 2, 2.0]), np.array([1, 2, 3, 4.0])) - 0.894427) < 1e-5


def test_confusion_and_f1() -> None:
    matrix = confusion(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    assert matrix.tolist() == [[1, 1], [0, 2]]
    precision, recall, f1 = per_class_precision_recall_f1(matrix)
    assert precision.tolist() == [1.0, 2 / 3] and recall.tolist() == [0.5, 1.0]
    assert abs(f1[1] - 0.8) < 1e-12


def test_ece() -> None:
    assert expected_calibration_error(np.array([0.9, 0.9]), np.array([1.0, 0.0])) == 0.4
    assert expected_calibration_error(np.array([0.75] * 4), np.array([1, 1, 1, 0.0])) == 0.0
