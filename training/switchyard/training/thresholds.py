"""The shipped router configs' escalation thresholds, from the shipped model's score distribution.

    python -m switchyard.training.thresholds --model DIR [--data-dir D]

The escalation score is a calibrated probability on the outcome data (MMLU, base rate 0.18), so
its scale is the model's, not a round number: a threshold chosen for another model (v1 scored
"hello" 0.52) sends nothing or everything to the frontier. The shipped defaults are chosen by a
written rule on a **reference mix**: the 242 traffic-like prompts of the three unseen-source
evaluation sets (real Chatbot Arena and app-instruction prompts, and prompts the project wrote
in the voice of users; ``evaluate.py``). None of them trains the model, and nothing here changes
the model: the rule only reads where its scores fall.

The rule (``RULE``):
- ``routing.escalation_threshold`` is the score's ``1 - DEFAULT_FRONTIER_SHARE`` quantile on
  the mix, so traffic like it sends about that share to the frontier;
- cheap task types (CLASSIFICATION, EXTRACTION) get ``threshold_delta`` = the
  ``1 - CHEAP_FRONTIER_SHARE`` quantile minus the default (a score half as many of the mix
  reach);
- MATH and SCIENCE get the ``1 - STRONG_FRONTIER_SHARE`` quantile minus the default (a score
  twice as many reach; they escalate to the strong frontier model);
every value rounded to 0.01. The quantiles are of the whole mix, not per task type: a type's
own share depends on how its prompts score (the score is mostly length, so types with long
prompts escalate more). Prints one JSON object: the quantiles, the chosen values and the share
of the mix (overall and per predicted task type) each would send up. The shipped router configs
hold its ``chosen`` values for the shipped model (a test in tests/unit/classifier checks).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "CHEAP_FRONTIER_SHARE",
    "DEFAULT_FRONTIER_SHARE",
    "RULE",
    "STRONG_FRONTIER_SHARE",
    "choose_thresholds",
    "main",
]

DEFAULT_FRONTIER_SHARE = 0.25
CHEAP_FRONTIER_SHARE = 0.125
STRONG_FRONTIER_SHARE = 0.50
RULE = (
    f"default = the {1 - DEFAULT_FRONTIER_SHARE:.3f} quantile of the escalation score on the "
    f"reference mix; CLASSIFICATION / EXTRACTION delta = the {1 - CHEAP_FRONTIER_SHARE:.3f} "
    f"quantile minus the default; MATH / SCIENCE delta = the "
    f"{1 - STRONG_FRONTIER_SHARE:.3f} quantile minus the default; rounded to 0.01"
)


def _quantile(scores: np.ndarray, share: float) -> float:
    """The threshold sending about ``share`` of these scores up (score >= threshold)."""
    return float(np.quantile(scores, 1.0 - share, method="lower"))


def choose_thresholds(scores: Sequence[float]) -> dict[str, float]:
    """The rule above on a sample of escalation scores: default threshold and the two deltas."""
    values = np.asarray(scores, dtype=np.float64)
    if not len(values):
        raise ValueError("no scores to choose thresholds from")
    default = round(_quantile(values, DEFAULT_FRONTIER_SHARE), 2)
    cheap = round(_quantile(values, CHEAP_FRONTIER_SHARE), 2)
    strong = round(_quantile(values, STRONG_FRONTIER_SHARE), 2)
    return {
        "escalation_threshold": default,
        "cheap_threshold_delta": round(cheap - default, 2),
        "strong_threshold_delta": round(strong - default, 2),
    }


def _share(scores: np.ndarray, threshold: float) -> float:
    return float((scores >= threshold - 1e-9).mean()) if len(scores) else 0.0


def main(argv: list[str] | None = None) -> int:
    from switchyard.classifier.model import ClassifierModel
    from switchyard.training.cli import resolve_data_dir
    from switchyard.training.evaluate import reference_mix

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = reference_mix(resolve_data_dir(args.data_dir) / "prompts")
    model = ClassifierModel(args.model)
    predictions = model.predict([prompt for _, prompt, _ in rows])
    scores = np.array([p.escalation for p in predictions])
    chosen = choose_thresholds(scores.tolist())
    default = chosen["escalation_threshold"]
    per_rule = {
        "CLASSIFICATION": default + chosen["cheap_threshold_delta"],
        "EXTRACTION": default + chosen["cheap_threshold_delta"],
        "MATH": default + chosen["strong_threshold_delta"],
        "SCIENCE": default + chosen["strong_threshold_delta"],
    }
    names = model.manifest.task_types
    predicted = [names[int(np.argmax(p.task_probabilities))] for p in predictions]
    by_type: dict[str, dict[str, float]] = {}  # by the predicted type, as the router applies it
    for task in sorted(set(predicted)):
        sel = np.array([name == task for name in predicted])
        threshold = per_rule.get(task.upper(), default)
        by_type[task] = {
            "n": int(sel.sum()),
            "threshold": round(threshold, 2),
            "frontier_share": _share(scores[sel], threshold),
        }
    report = {
        "model": model.version,
        "rule": RULE,
        "reference_mix": len(rows),
        "score": {
            "min": float(scores.min()),
            "median": float(np.median(scores)),
            "max": float(scores.max()),
            **{f"q{q}": float(np.quantile(scores, q / 100)) for q in (50, 75, 87.5, 90)},
        },
        "chosen": chosen,
        "frontier_share_at_default": _share(scores, default),
        "by_task_type": by_type,
        "old_threshold_0.5_share": _share(scores, 0.5),
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
