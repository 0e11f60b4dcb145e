"""The task-type head: multinomial logistic regression on the embedding, the prompt's two ends
(the encoder's ``end_states``) and the token bags (``tokens.py``), then temperature.

A calibration split (1 row in 6 after a fixed shuffle, never the held-out split) picks the
temperature, and for a team's own unweighted labels also C. The shipped, source-balanced rows
use ``BALANCED_TASK_C``, chosen by leave-source-out validation (``evaluate.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from switchyard.training.heads import softmax

__all__ = ["BALANCED_TASK_C", "TASK_SEED", "TaskHead", "fit_task_head", "task_features"]

TASK_SEED = 20240601
# Inverse regularisation of the task head on source-balanced rows (the shipped model), chosen
# by leave-source-out validation over whole sources (see the model card), never by the
# held-out split.
BALANCED_TASK_C = 16.0
# C tried on a team's own (unweighted) labels, by calibration-split log loss.
UNWEIGHTED_C_GRID = (1.0, 4.0, 16.0, 64.0)


@dataclass
class TaskHead:
    weights: np.ndarray  # [hidden, types], divided by the temperature
    bias: np.ndarray  # [types]
    temperature: float
    c: float
    model: object  # the fitted scikit-learn estimator (for the build test's cross-check)
    token_weights: np.ndarray | None = None  # [SEGMENTS * VOCAB, types], / temperature
    end_weights: np.ndarray | None = None  # [END_STATES, types], / temperature

    def probabilities(
        self, embedding: np.ndarray, bags: object | None = None, ends: np.ndarray | None = None
    ) -> np.ndarray:
        logits = embedding.astype(np.float64) @ self.weights + self.bias
        if self.end_weights is not None:
            if ends is None:
                raise ValueError("this task head reads the prompt's ends: pass ends")
            logits = logits + ends.astype(np.float64) @ self.end_weights
        if self.token_weights is not None:
            logits = logits + np.asarray(bags @ self.token_weights)  # type: ignore[operator]
        return softmax(logits)


def task_features(
    embedding: np.ndarray, bags: object | None, ends: np.ndarray | None = None
) -> Any:
    """What the head's estimator reads: the embedding, the prompt's ends if any, then the token
    bags (sparse) if any."""
    dense = embedding if ends is None else np.hstack([embedding, ends])
    if bags is None:
        return dense
    import scipy.sparse as sp

    return sp.hstack([sp.csr_matrix(dense.astype(np.float64)), bags]).tocsr()


def _logits(model: object, x: np.ndarray) -> np.ndarray:
    """Per-class logits of a fitted LogisticRegression; a binary model's one score split in two."""
    scores = model.decision_function(x)  # type: ignore[attr-defined]
    if scores.ndim == 1:
        return np.stack([-scores / 2, scores / 2], axis=1)
    return scores


def _log_loss(logits: np.ndarray, truth: np.ndarray) -> float:
    return float(-np.log(softmax(logits)[np.arange(len(truth)), truth] + 1e-12).mean())


def fit_task_head(
    embedding: np.ndarray,
    y: np.ndarray,
    classes: int,
    log: Callable[[str], None] = lambda _: None,
    sample_weight: np.ndarray | None = None,
    *,
    bags: object | None = None,
    ends: np.ndarray | None = None,
    c: float | None = None,
    calibrate: bool = True,
) -> TaskHead:
    """Fit the head on the embedding and, when given, the prompt's ends and the token bags.
    ``c`` fixes C (weighted
    rows default to ``BALANCED_TASK_C``; unweighted rows choose from ``UNWEIGHTED_C_GRID``).
    With ``calibrate=False`` (validation refits) every row is fitted and the temperature is 1."""
    from sklearn.linear_model import LogisticRegression

    hidden = embedding.shape[1]
    dense = hidden + (0 if ends is None else ends.shape[1])
    x = task_features(embedding, bags, ends)
    rng = np.random.default_rng(TASK_SEED)
    cal = rng.random(len(y)) < 1 / 6 if calibrate else np.zeros(len(y), bool)
    if c is not None:
        grid: tuple[float, ...] = (c,)
    else:
        grid = UNWEIGHTED_C_GRID if sample_weight is None else (BALANCED_TASK_C,)
    best: tuple[float, float, Any, np.ndarray | None, np.ndarray | None] | None = None
    for value in grid:
        model = LogisticRegression(C=value, max_iter=3000, random_state=TASK_SEED)
        model.fit(
            x[~cal], y[~cal], sample_weight=None if sample_weight is None else sample_weight[~cal]
        )
        if not calibrate:
            best = (0.0, value, model, None, None)
            break
        known = cal & np.isin(y, model.classes_)  # a rare type may sit wholly in the cal split
        logits = _logits(model, x[known])
        truth = np.searchsorted(model.classes_, y[known])
        loss = _log_loss(logits, truth)
        log(f"  task head C={value}: calibration-split log loss {loss:.4f}")
        if best is None or loss < best[0]:
            best = (loss, value, model, logits, truth)
    assert best is not None
    _, chosen, model, best_logits, best_truth = best
    temperature = 1.0
    if best_logits is not None and best_truth is not None:
        temps = np.exp(np.linspace(np.log(0.25), np.log(4.0), 121))
        losses = [_log_loss(best_logits / t, best_truth) for t in temps]
        temperature = float(temps[int(np.argmin(losses))])
    log(f"  task head: C={chosen}, temperature {temperature:.3f}")
    # Columns for every task type, also those absent from the data (never predicted).
    weights = np.zeros((x.shape[1], classes))  # type: ignore[union-attr]
    bias = np.full(classes, -30.0)
    fitted = model.classes_  # type: ignore[attr-defined]
    coef = model.coef_  # type: ignore[attr-defined]
    intercept = model.intercept_  # type: ignore[attr-defined]
    if len(fitted) == 2:
        coef = np.vstack([-coef[0], coef[0]]) / 2
        intercept = np.array([-intercept[0], intercept[0]]) / 2
    for row, cls in enumerate(fitted):
        weights[:, cls] = coef[row] / temperature
        bias[cls] = intercept[row] / temperature
    return TaskHead(
        weights[:hidden],
        bias,
        temperature,
        chosen,
        model,
        None if bags is None else weights[dense:],
        None if ends is None else weights[hidden:dense],
    )
