"""Evaluation metrics for the model card: macro-F1, Spearman, calibration, APGR and CPT."""

from __future__ import annotations

import numpy as np

__all__ = [
    "apgr_and_cpt",
    "auc",
    "confusion",
    "expected_calibration_error",
    "per_class_precision_recall_f1",
    "reliability_table",
    "share_at_quality",
    "spearman",
]


def confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def per_class_precision_recall_f1(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(matrix).astype(float)
    precision = np.divide(
        tp, matrix.sum(axis=0), out=np.zeros_like(tp), where=matrix.sum(axis=0) > 0
    )
    recall = np.divide(tp, matrix.sum(axis=1), out=np.zeros_like(tp), where=matrix.sum(axis=1) > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0
        i = j + 1
    return ranks


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a random positive scores above a random negative), ties counted half (Mann-Whitney)."""
    pos, neg = np.asarray(positive, float), np.asarray(negative, float)
    ranks = _ranks(np.concatenate([pos, neg])) + 1.0
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation with average ranks for ties."""
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    ra -= ra.mean()
    rb -= rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def reliability_table(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> list[tuple[float, float, int, float, float]]:
    """Rows (bin low, bin high, count, mean confidence, accuracy) over equal-width bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > low) & (confidence <= high) if low > 0 else (confidence <= high)
        n = int(in_bin.sum())
        if n:
            rows.append(
                (
                    float(low),
                    float(high),
                    n,
                    float(confidence[in_bin].mean()),
                    float(correct[in_bin].mean()),
                )
            )
    return rows


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    total = len(confidence)
    return float(
        sum(
            n / total * abs(conf - acc)
            for _, _, n, conf, acc in reliability_table(confidence, correct, bins)
        )
    )


def apgr_and_cpt(
    scores: np.ndarray, local_ok: np.ndarray, frontier_ok: np.ndarray, steps: int = 200
) -> tuple[float, float]:
    """RouteLLM's APGR and CPT(50%) for an escalation score (higher = send to frontier first).

    For each share s of requests sent to the frontier (highest scores first), accuracy is the
    frontier's on those and the local model's on the rest. APGR is the area under the
    performance-gap-recovered curve, (acc(s) - local) / (frontier - local), over s in [0, 1];
    CPT(50%) is the smallest share recovering half the gap.
    """
    n = len(scores)
    order = np.argsort(-np.asarray(scores, float), kind="mergesort")
    local = np.asarray(local_ok, float)[order]
    frontier = np.asarray(frontier_ok, float)[order]
    # accuracy when the first k go to the frontier, for k = 0..n
    gain = np.concatenate([[0.0], np.cumsum(frontier - local)])
    acc = (local.sum() + gain) / n
    acc_local, acc_frontier = local.mean(), frontier.mean()
    gap = acc_frontier - acc_local
    if gap <= 0:
        return 0.0, 1.0
    shares = np.linspace(0.0, 1.0, steps + 1)
    k = np.rint(shares * n).astype(int)
    pgr = (acc[k] - acc_local) / gap
    apgr = float(np.trapezoid(pgr, shares))
    reached = np.nonzero((acc - acc_local) / gap >= 0.5)[0]
    cpt = float(reached[0] / n) if len(reached) else 1.0
    return apgr, cpt


def share_at_quality(
    scores: np.ndarray, local_ok: np.ndarray, frontier_ok: np.ndarray, quality: float = 0.95
) -> float:
    """The smallest share of requests sent to the frontier (highest scores first) at which
    accuracy reaches ``quality`` x the all-frontier accuracy; 1.0 when only all-frontier does.
    One minus it is the saving at that quality: the share of requests kept local."""
    n = len(scores)
    order = np.argsort(-np.asarray(scores, float), kind="mergesort")
    local = np.asarray(local_ok, float)[order]
    frontier = np.asarray(frontier_ok, float)[order]
    acc = (local.sum() + np.concatenate([[0.0], np.cumsum(frontier - local)])) / n
    target = quality * frontier.mean()
    reached = np.nonzero(acc >= target - 1e-12)[0]
    return float(reached[0] / n) if len(reached) else 1.0
