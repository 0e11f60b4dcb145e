"""``switchyard-classifier evaluate MODEL_DIR --outcomes FILE``: a model directory's escalation
score on outcomes held out from its training.

The outcomes are a file ``switchyard outcomes export`` wrote (or the shipped schema). Only rows
with both tiers rated and prompt text can be scored (ranking metrics need both tiers' result;
the model needs the prompt), and only rows the model did not train on (``lineage.seen_outcomes``:
the ids its directory lists, or the recipe's split for a model that lists none). For the model's
score, ordering by prompt length (the model's own token count) and random ordering (mean of 100
draws), it reports:

- **APGR**: area under the performance-gap-recovered curve, local-only = 0, frontier-only = 1;
- **CPT(50%)**: the share of requests sent to the frontier to recover half the gap;
- **saving at 95% quality**: the share of requests kept local at the smallest frontier share
  whose accuracy is 95% of all-frontier accuracy (the cheapest routing of that quality).

Text by default; ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from switchyard.classifier.model import ClassifierModel, ModelLoadError
from switchyard.training import metrics
from switchyard.training.data import DataFileError
from switchyard.training.lineage import seen_outcomes
from switchyard.training.team_outcomes import RatedOutcome, read_team_outcomes

__all__ = [
    "QUALITY",
    "RANDOM_DRAWS",
    "Scored",
    "escalation_scores",
    "main",
    "score_report",
    "scorable",
]

QUALITY = 0.95
RANDOM_DRAWS = 100
RANDOM_SEED = 20240601
# Prompts per predict() call while scoring.
CHUNK = 64


@dataclass(frozen=True)
class Scored:
    """A metric triple for one ordering."""

    apgr: float
    cpt50: float
    saving_at_95: float

    @classmethod
    def of(cls, scores: np.ndarray, local_ok: np.ndarray, frontier_ok: np.ndarray) -> Scored:
        apgr, cpt = metrics.apgr_and_cpt(scores, local_ok, frontier_ok)
        share = metrics.share_at_quality(scores, local_ok, frontier_ok, QUALITY)
        return cls(apgr, cpt, 1.0 - share)


def scorable(
    rows: Sequence[RatedOutcome], trained_on: Sequence[Callable[[str], bool]] = ()
) -> list[RatedOutcome]:
    """Rows with both tiers rated and a prompt, that none of ``trained_on`` saw."""
    return [
        r
        for r in rows
        if r.full and r.prompt is not None and not any(seen(r.id) for seen in trained_on)
    ]


def escalation_scores(
    model: ClassifierModel, prompts: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(escalation probabilities, token counts) of the prompts under ``model``."""
    escalation: list[float] = []
    tokens: list[int] = []
    for start in range(0, len(prompts), CHUNK):
        for p in model.predict(list(prompts[start : start + CHUNK])):
            escalation.append(p.escalation)
            tokens.append(p.input_tokens)
    return np.array(escalation), np.array(tokens, dtype=np.float64)


def score_report(
    scores: dict[str, np.ndarray], local_ok: np.ndarray, frontier_ok: np.ndarray
) -> dict[str, object]:
    """Each named ordering's metrics, and random ordering's (mean of ``RANDOM_DRAWS``)."""
    out: dict[str, object] = {
        "rows": len(local_ok),
        "local_accuracy": float(np.mean(local_ok)) if len(local_ok) else 0.0,
        "frontier_accuracy": float(np.mean(frontier_ok)) if len(frontier_ok) else 0.0,
    }
    for name, s in scores.items():
        out[name] = Scored.of(s, local_ok, frontier_ok).__dict__
    draws = np.random.default_rng(RANDOM_SEED).random((RANDOM_DRAWS, len(local_ok)))
    runs = [Scored.of(d, local_ok, frontier_ok) for d in draws]
    out["random"] = {
        key: float(np.mean([getattr(r, key) for r in runs]))
        for key in ("apgr", "cpt50", "saving_at_95")
    }
    return out


def evaluate_model_dir(
    model_dir: Path, outcomes: Path, *, include_trained: bool = False
) -> dict[str, object]:
    """The report ``evaluate`` prints (``ModelLoadError`` / ``DataFileError`` on bad input)."""
    model = ClassifierModel(model_dir)
    team = read_team_outcomes(outcomes)
    rows = scorable(team.rows, () if include_trained else (seen_outcomes(model_dir),))
    report: dict[str, object] = {
        "model": model.version,
        "outcomes": str(outcomes),
        "file_rows": len(team.rows),
        "held_out_only": not include_trained,
    }
    if not rows:
        raise DataFileError(
            f"{outcomes}: no row to score ({len(team.full)} rows rated on both tiers; the rest are "
            "partial; rows the model trained on are left out)"
        )
    escalation, tokens = escalation_scores(model, [str(r.prompt) for r in rows])
    local_ok = np.array([bool(r.local_ok) for r in rows])
    frontier_ok = np.array([bool(r.frontier_ok) for r in rows])
    report.update(
        score_report({"model_score": escalation, "prompt_length": tokens}, local_ok, frontier_ok)
    )
    return report


def _text(report: dict[str, object]) -> str:
    lines = [
        f"{report['model']} on {report['rows']} held-out outcomes of {report['outcomes']} "
        f"(local right {report['local_accuracy']:.1%}, frontier right "
        f"{report['frontier_accuracy']:.1%})",
        f"{'':16}{'APGR':>8}{'CPT(50%)':>10}{'saving at 95%':>15}",
    ]
    for name in ("model_score", "prompt_length", "random"):
        row = report[name]
        assert isinstance(row, dict)
        lines.append(f"{name:16}{row['apgr']:8.3f}{row['cpt50']:10.1%}{row['saving_at_95']:15.1%}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchyard-classifier evaluate",
        description="Score a model directory's escalation on held-out outcomes: APGR, CPT(50%%) "
        "and the saving at 95%% of frontier quality, next to prompt length and random ordering.",
    )
    parser.add_argument("model_dir", type=Path, metavar="MODEL_DIR")
    parser.add_argument(
        "--outcomes",
        type=Path,
        required=True,
        help="an outcome file (`switchyard outcomes export`, or the shipped schema)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--include-trained",
        action="store_true",
        help="also score rows the model trained on (not a held-out number)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        report = evaluate_model_dir(
            args.model_dir, args.outcomes, include_trained=args.include_trained
        )
    except (ModelLoadError, DataFileError) as exc:
        message = exc.message if isinstance(exc, ModelLoadError) else str(exc)
        print(f"error: {message}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else _text(report))
    return 0
