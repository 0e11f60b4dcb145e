"""Leave-source-out validation of the task head: the only thing the recipe is chosen by.

A *source* is what ``balance.source_of`` names: a dataset, a P3 template, an authored family or
everyday kind, the user-voice prompts, a derived format, MMLU. The sources are dealt into
``SOURCE_FOLDS`` folds (sorted by their main task type, then name, dealt round-robin, so a
task type's sources spread over the folds); each fold's sources are left out whole, the recipe
is refitted on the training rows of the others and scored on every row of the left-out ones.
Every source is left out exactly once, so each gets an accuracy from a model that never saw it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from switchyard.training.balance import source_of
from switchyard.training.records import LabeledPrompt

__all__ = ["SOURCE_FOLDS", "leave_source_out", "source_folds"]

SOURCE_FOLDS = 5

# fit(train row indices) -> predict(test row indices) -> predicted class indices
Recipe = Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]]


def source_folds(rows: Sequence[LabeledPrompt], folds: int = SOURCE_FOLDS) -> dict[str, int]:
    """Source -> fold number."""
    types: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        types[source_of(row.group)][row.task_type or ""] += 1
    order = sorted(types, key=lambda s: (types[s].most_common(1)[0][0], s))
    return {source: i % folds for i, source in enumerate(order)}


def leave_source_out(
    rows: Sequence[LabeledPrompt],
    labels: np.ndarray,
    trainable: np.ndarray,
    recipe: Recipe,
    folds: int = SOURCE_FOLDS,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, object]:
    """Accuracy per left-out source (and per task type within a source of several types).

    ``trainable`` marks the rows a refit may use (the training split); every row of a left-out
    source is scored, held-out split included (no model that scores it was fitted on it).
    """
    fold_of = source_folds(rows, folds)
    sources = np.array([source_of(r.group) for r in rows])
    row_fold = np.array([fold_of[s] for s in sources])
    predicted = np.full(len(rows), -1)
    for fold in range(folds):
        test = np.nonzero(row_fold == fold)[0]
        train = np.nonzero((row_fold != fold) & trainable)[0]
        if not len(test):
            continue
        predicted[test] = recipe(train)(test)
        log(f"  fold {fold}: {len(train)} training rows, {len(test)} left-out rows")
    correct = predicted == labels
    per_source: dict[str, object] = {}
    for source in sorted(set(sources)):
        sel = sources == source
        entry: dict[str, object] = {"n": int(sel.sum()), "accuracy": float(correct[sel].mean())}
        kinds = sorted(set(labels[sel].tolist()))
        if len(kinds) > 1:
            entry["by_label"] = {
                int(k): {
                    "n": int((sel & (labels == k)).sum()),
                    "accuracy": float(correct[sel & (labels == k)].mean()),
                }
                for k in kinds
            }
        per_source[source] = entry
    accuracies = {s: float(v["accuracy"]) for s, v in per_source.items()}  # type: ignore[index]
    worst = min(accuracies, key=lambda s: accuracies[s])
    return {
        "folds": folds,
        "pooled_accuracy": float(correct.mean()),
        "mean_over_sources": float(np.mean(list(accuracies.values()))),
        "worst_source": {"source": worst, "accuracy": accuracies[worst]},
        "per_source": per_source,
        "predicted": predicted,
    }
