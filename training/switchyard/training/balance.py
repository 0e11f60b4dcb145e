"""Sample weights that stop one dataset from defining a task type.

Each task type gets the same total weight, and within a task type each *source* (a dataset, a P3
template, an authored template family or everyday kind, the user-voice prompts, a derived
format, MMLU) gets the same share, split evenly
among its rows. Without this, 2,500 SimpleQA trivia questions taught the head that "chat" means
"short factual question" and BIG-Bench Hard's layout taught it what "reasoning" looks like; a
source with 30 hand-written prompts had no say. Used for the shipped model only: a team's own
label file (``--labels``) is its traffic, whose class mix is meaningful, so it is fitted unweighted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from switchyard.training.data import LabeledPrompt

__all__ = ["balanced_weights", "source_of"]


def source_of(group: str) -> str:
    """The source a row's split group belongs to (coarser than the group)."""
    if group.startswith("authored/voice_"):
        return "authored/voice"
    if group.startswith(("authored/", "p3/", "derived/")):
        return "/".join(group.split("/")[:2])
    return group.split("/")[0]


def balanced_weights(rows: Sequence[LabeledPrompt]) -> np.ndarray:
    """Per-row weights: equal total per task type, equal share per source within it; mean 1."""
    per_source = Counter((r.task_type, source_of(r.group)) for r in rows)
    sources_per_type: dict[str | None, int] = defaultdict(int)
    for task, _ in per_source:
        sources_per_type[task] += 1
    weights = np.array(
        [
            1.0 / (per_source[(r.task_type, source_of(r.group))] * sources_per_type[r.task_type])
            for r in rows
        ]
    )
    return weights * len(rows) / weights.sum()
