"""The build's ``evaluate`` phase: held-out metrics of the fitted heads, for the manifest.

Computed with the heads' numpy reference (``Heads.predict``), which the build test checks
against the ONNX graph.
"""

from __future__ import annotations

import numpy as np

from switchyard.classifier.taxonomy import TASK_TYPE_NAMES
from switchyard.training import metrics
from switchyard.training.escalation import escalation_report
from switchyard.training.heads import Heads
from switchyard.training.phases import EmbeddedRows, FittedHeads, TrainingRows

__all__ = ["EVERYDAY_TARGET", "HARD_TARGET", "evaluate"]

# Complexity targets at or above HARD / at or below EVERYDAY: the two sides of the hard vs
# everyday AUC reported for the complexity score.
HARD_TARGET = 0.75
EVERYDAY_TARGET = 0.25


def _task_report(heads: Heads, rows: TrainingRows, embedded: EmbeddedRows) -> dict[str, object]:
    classes = len(TASK_TYPE_NAMES)
    ev = embedded.task_eval
    probs = heads.predict(ev.x, ev.n, ev.bags, ev.ends)["task_probabilities"]
    truth = np.array([TASK_TYPE_NAMES.index(r.task_type) for r in rows.task_eval])
    pred = probs.argmax(axis=1)
    matrix = metrics.confusion(truth, pred, classes)
    precision, recall, f1 = metrics.per_class_precision_recall_f1(matrix)
    present = matrix.sum(axis=1) > 0
    conf = probs.max(axis=1)
    correct = (pred == truth).astype(float)
    return {
        "held_out_rows": len(rows.task_eval),
        "macro_f1": float(f1[present].mean()),
        "accuracy": float(correct.mean()),
        "per_type": {
            TASK_TYPE_NAMES[i]: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(matrix[i].sum()),
            }
            for i in range(classes)
            if present[i]
        },
        "confusion": matrix.tolist(),
        "ece": metrics.expected_calibration_error(conf, correct),
        "reliability": metrics.reliability_table(conf, correct),
        "temperature": heads.temperature,
    }


def _complexity_report(
    heads: Heads, rows: TrainingRows, embedded: EmbeddedRows
) -> dict[str, object]:
    x = embedded.complexity_eval.x
    pred = np.clip(x @ heads.complexity_weights + heads.complexity_bias, 0, 1)
    true = np.array([r.complexity for r in rows.complexity_eval])
    report: dict[str, object] = {
        "all_rows": {"n": len(true), "spearman": metrics.spearman(pred, true)}
    }
    hard, everyday = true >= HARD_TARGET, true <= EVERYDAY_TARGET
    if hard.any() and everyday.any():
        report["hard_vs_everyday"] = {
            "hard_rows": int(hard.sum()),
            "everyday_rows": int(everyday.sum()),
            "auc": metrics.auc(pred[hard], pred[everyday]),
        }
    for name, groups in (
        ("math_levels", ("math_train", "math_test")),
        ("debugbench", ("debugbench",)),
    ):
        sel = np.array([r.group in groups for r in rows.complexity_eval])
        if sel.sum() > 10:
            report[name] = {
                "n": int(sel.sum()),
                "spearman": metrics.spearman(pred[sel], true[sel]),
            }
    return report


def evaluate(fitted: FittedHeads, rows: TrainingRows, embedded: EmbeddedRows) -> dict[str, object]:
    """Held-out metrics of the heads as the graph computes them (their numpy reference)."""
    heads = fitted.heads
    report: dict[str, object] = {
        "task": _task_report(heads, rows, embedded),
        "complexity": _complexity_report(heads, rows, embedded),
    }
    if rows.outcome_eval and fitted.escalation is not None:
        ev = embedded.outcome_eval
        scores = heads.predict(ev.x, ev.n, ev.bags, ev.ends)
        esc = escalation_report(
            {
                "model": scores["escalation"],
                "prompt_length": ev.n.ravel(),
                "complexity": scores["complexity"],
            },
            np.array([o.local_ok for o in rows.outcome_eval]),
            np.array([o.frontier_ok for o in rows.outcome_eval]),
        )
        esc.update(fitted.escalation.report)
        report["escalation_random_split"] = esc
        esc.pop("grid", None)
        report["escalation_trust"] = {
            "sim_low": heads.sim_low,
            "sim_high": heads.sim_high,
            "centroids": len(heads.centroids),
            "transfer_length_weight": heads.transfer_length_weight,
            "transfer_complexity_weight": heads.transfer_complexity_weight,
            "transfer_task_weights": dict(
                zip(TASK_TYPE_NAMES, map(float, heads.transfer_task_weights), strict=True)
            ),
        }
    return report
