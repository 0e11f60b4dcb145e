"""``switchyard-classifier promote CANDIDATE --serving DIR --outcomes FILE``: guarded promotion.

A candidate model directory replaces the serving one only if, on the outcomes of FILE that
*neither* model trained on (``lineage.seen_outcomes`` of each: held out means held out), both
tiers rated, it beats the serving model's APGR by more than ``--min-gain`` (default 0: strictly
better), on at least ``--min-rows`` outcomes. A candidate that fails to load (a missing or
corrupt file: its manifest's hashes are checked) is refused the same way, and nothing is written.

Installing first keeps the model it replaces in ``DIR/.previous/`` (its manifest and the files
it names; one generation), then copies the candidate's files into DIR, each through a temporary
file and a rename, ``manifest.json`` last, with a ``promotion`` record added to it (the model it
replaced, both scores, the number of outcomes and the outcome file's sha256).
``switchyard-classifier rollback --serving DIR`` puts ``.previous`` back the same way (no
guard: the operator decides), keeping the model it replaces as the new ``.previous``, so a
second rollback rolls forward again. The classifier service reloads
DIR when its manifest changes (``SWITCHYARD_CLASSIFIER_MODEL_DIR``; services/classifier
``reloading.py``), and a half-copied directory never loads: the manifest that names the new
files' hashes comes last, and a load checks every hash.

Exit status: 0 promoted, 1 refused (the candidate did not beat the serving model, or too few
held-out outcomes), 2 bad input. ``--dry-run`` decides without installing. ``rollback``: 0
rolled back, 2 nothing to roll back to (or it does not load).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from switchyard.classifier.model import MANIFEST_NAME, ClassifierModel, ModelLoadError
from switchyard.training.data import DataFileError
from switchyard.training.encoder import sha256_file
from switchyard.training.lineage import seen_outcomes
from switchyard.training.outcome_evaluation import Scored, escalation_scores, scorable
from switchyard.training.team_outcomes import read_team_outcomes

__all__ = [
    "DEFAULT_MIN_ROWS",
    "PREVIOUS_DIR",
    "Decision",
    "decide",
    "install",
    "main",
    "rollback",
    "rollback_main",
]

# Fewest held-out outcomes a promotion is decided on.
DEFAULT_MIN_ROWS = 50
# Where, inside the serving directory, the model a promotion replaced is kept.
PREVIOUS_DIR = ".previous"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    candidate: str
    serving: str
    rows: int
    candidate_score: Scored | None
    serving_score: Scored | None

    def as_dict(self) -> dict[str, object]:
        return {
            "promote": self.promote,
            "reason": self.reason,
            "candidate": self.candidate,
            "serving": self.serving,
            "held_out_rows": self.rows,
            "candidate_score": self.candidate_score.__dict__ if self.candidate_score else None,
            "serving_score": self.serving_score.__dict__ if self.serving_score else None,
        }


def decide(
    candidate_dir: Path,
    serving_dir: Path,
    outcomes: Path,
    *,
    min_gain: float = 0.0,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> Decision:
    """Score both models on the outcomes neither trained on. ``ModelLoadError`` when the
    candidate (or the serving model) does not load; ``DataFileError`` for a bad outcome file."""
    candidate = ClassifierModel(candidate_dir)
    serving = ClassifierModel(serving_dir)
    team = read_team_outcomes(outcomes)
    rows = scorable(team.rows, (seen_outcomes(candidate_dir), seen_outcomes(serving_dir)))

    def refuse(reason: str, *scores: Scored) -> Decision:
        c, s = (scores + (None, None))[:2]
        return Decision(False, reason, candidate.version, serving.version, len(rows), c, s)

    if candidate.version == serving.version:
        return refuse(f"the candidate is the serving model ({serving.version})")
    if len(rows) < min_rows:
        return refuse(
            f"{len(rows)} outcomes held out from both models' training (rated on both tiers, "
            f"with prompt text); at least {min_rows} are needed"
        )
    local_ok = np.array([bool(r.local_ok) for r in rows])
    frontier_ok = np.array([bool(r.frontier_ok) for r in rows])
    prompts = [str(r.prompt) for r in rows]
    c_score = Scored.of(escalation_scores(candidate, prompts)[0], local_ok, frontier_ok)
    s_score = Scored.of(escalation_scores(serving, prompts)[0], local_ok, frontier_ok)
    verdict = (
        f"candidate APGR {c_score.apgr:.4f} vs serving {s_score.apgr:.4f} on {len(rows)} "
        f"held-out outcomes (required gain > {min_gain})"
    )
    if c_score.apgr - s_score.apgr > min_gain:
        return Decision(
            True, verdict, candidate.version, serving.version, len(rows), c_score, s_score
        )
    return refuse(verdict, c_score, s_score)


def _replace_file(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.promoting")
    shutil.copyfile(source, tmp)
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(target)


def _read_manifest(directory: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    return manifest


def _keep_previous(serving_dir: Path) -> None:
    """Copy the serving model (its manifest and the files it names) to ``.previous``, replacing
    an older one; written beside it and renamed into place, so ``.previous`` is whole or old."""
    if not (serving_dir / MANIFEST_NAME).is_file():
        return  # nothing serving yet
    manifest = _read_manifest(serving_dir)
    staging = serving_dir / f"{PREVIOUS_DIR}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name in sorted(manifest["files"]) + [MANIFEST_NAME]:
        shutil.copyfile(serving_dir / name, staging / name)
    previous = serving_dir / PREVIOUS_DIR
    shutil.rmtree(previous, ignore_errors=True)
    staging.rename(previous)


def _copy_model(source_dir: Path, serving_dir: Path, manifest: dict[str, Any]) -> None:
    for name in sorted(manifest["files"]):
        _replace_file(source_dir / name, serving_dir / name)
    tmp = serving_dir / f".{MANIFEST_NAME}.promoting"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(serving_dir / MANIFEST_NAME)


def install(candidate_dir: Path, serving_dir: Path, record: dict[str, object]) -> None:
    """Keep the serving model in ``.previous``, then copy the candidate into the serving
    directory, manifest last (see the module docs)."""
    manifest = _read_manifest(candidate_dir)
    serving_dir.mkdir(parents=True, exist_ok=True)
    _keep_previous(serving_dir)
    manifest["promotion"] = record
    _copy_model(candidate_dir, serving_dir, manifest)


def rollback(serving_dir: Path) -> tuple[str, str]:
    """Put the model kept in ``.previous`` back into service (keeping the one it replaces as
    the next ``.previous``); (the version rolled back from, the version now serving).
    ``ModelLoadError`` when there is nothing to roll back to or it does not load."""
    previous = serving_dir / PREVIOUS_DIR
    if not (previous / MANIFEST_NAME).is_file():
        raise ModelLoadError(f"{previous}: no previous model kept (nothing was promoted here)")
    restored = ClassifierModel(previous)  # every file's hash checked before anything moves
    current = ClassifierModel(serving_dir).version
    staging = serving_dir.parent / f".{serving_dir.name}.rollback"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(previous, staging)  # .previous is about to become the current model
    try:
        manifest = _read_manifest(staging)
        _keep_previous(serving_dir)
        manifest["rollback"] = {"replaced": current, "restored": restored.version}
        _copy_model(staging, serving_dir, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return current, restored.version


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchyard-classifier promote",
        description="Replace the serving model directory with a candidate only if the candidate "
        "beats it on outcomes held out from both models' training.",
    )
    parser.add_argument("candidate", type=Path, metavar="CANDIDATE_DIR")
    parser.add_argument(
        "--serving",
        type=Path,
        required=True,
        help="the directory the classifier serves (SWITCHYARD_CLASSIFIER_MODEL_DIR)",
    )
    parser.add_argument("--outcomes", type=Path, required=True, help="an outcome file")
    parser.add_argument(
        "--min-gain", type=float, default=0.0, help="APGR the candidate must gain (default 0)"
    )
    parser.add_argument(
        "--min-rows",
        type=int,
        default=DEFAULT_MIN_ROWS,
        help=f"fewest held-out outcomes to decide on (default {DEFAULT_MIN_ROWS})",
    )
    parser.add_argument("--dry-run", action="store_true", help="decide, do not install")
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        decision = decide(
            args.candidate,
            args.serving,
            args.outcomes,
            min_gain=args.min_gain,
            min_rows=args.min_rows,
        )
    except ModelLoadError as exc:
        print(f"error: refused, a model does not load: {exc.message}", file=sys.stderr)
        return 2
    except DataFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    installed = decision.promote and not args.dry_run
    if installed:
        install(
            args.candidate,
            args.serving,
            decision.as_dict() | {"outcomes_sha256": sha256_file(args.outcomes)},
        )
    out = decision.as_dict() | {"installed": installed}
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        action = "promoted" if installed else ("would promote" if decision.promote else "refused")
        print(f"{action}: {decision.candidate} (serving {decision.serving}): {decision.reason}")
    return 0 if decision.promote else 1


def rollback_main(argv: list[str] | None = None) -> int:
    """``switchyard-classifier rollback --serving DIR``."""
    parser = argparse.ArgumentParser(
        prog="switchyard-classifier rollback",
        description="Put back the model the last promotion replaced (kept in DIR/.previous); "
        "the model it replaces is kept in its place, so a second rollback rolls forward.",
    )
    parser.add_argument(
        "--serving",
        type=Path,
        required=True,
        help="the directory the classifier serves (SWITCHYARD_CLASSIFIER_MODEL_DIR)",
    )
    args = parser.parse_args(argv)
    try:
        replaced, restored = rollback(args.serving)
    except ModelLoadError as exc:
        print(f"error: cannot roll back: {exc.message}", file=sys.stderr)
        return 2
    print(f"rolled back: {restored} serving again (replaced {replaced})")
    return 0
