"""``switchyard-classifier train``: the command-line front of ``training.build``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from switchyard.training.data import DataFileError
from switchyard.training.fine_tune import FineTuneRecipe
from switchyard.training.team_outcomes import DEFAULT_TEAM_WEIGHT

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_OUTCOMES_FILE",
    "DataDirError",
    "checkout_root",
    "default_data_dir",
    "main",
    "resolve_data_dir",
]

DEFAULT_OUTCOMES_FILE = "outcomes/mmlu_mixtral_vs_gpt4.jsonl"
DATA_DIR_ENV = "SWITCHYARD_TRAINING_DATA_DIR"


class DataDirError(ValueError):
    """The built-in datasets' directory is not given or not there."""


def checkout_root() -> Path | None:
    """The repository this module runs from, when it runs from a checkout (an editable
    install); None when it is installed as a package."""
    root = Path(__file__).resolve().parents[3]
    if (root / "training" / "pyproject.toml").is_file() and (root / ".git").exists():
        return root
    return None


def default_data_dir() -> Path | None:
    """``$SWITCHYARD_TRAINING_DATA_DIR``; else, run from a checkout, the checkout's
    ``../shared/datasets``; else None (the caller must be given ``--data-dir``)."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    root = checkout_root()
    return None if root is None else root.parent / "shared" / "datasets"


def resolve_data_dir(given: Path | None) -> Path:
    """The built-in datasets' directory, or ``DataDirError`` naming the flag and variable."""
    data_dir = given or default_data_dir()
    if data_dir is None:
        raise DataDirError(
            "no built-in datasets directory: pass --data-dir DIR (a folder with prompts/ and "
            f"outcomes/) or set ${DATA_DIR_ENV}, or pass --no-builtin-data with --labels"
        )
    if not (data_dir / "prompts").is_dir():
        raise DataDirError(
            f"built-in datasets not found at {data_dir} (no prompts/ folder): pass --data-dir "
            f"DIR or set ${DATA_DIR_ENV}, or pass --no-builtin-data with --labels"
        )
    return data_dir


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchyard-classifier train",
        description="Build a classifier model directory (one ONNX file, tokenizer, manifest). "
        "With no --labels, task types come from the built-in prompt datasets; with no "
        "--outcomes, escalation is learned from the built-in outcome data.",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to write the model to")
    parser.add_argument(
        "--labels",
        type=Path,
        help="JSONL: prompt, task_type, optional complexity; replaces the built-in task rows",
    )
    parser.add_argument(
        "--add-labels",
        type=Path,
        help="JSONL like --labels, added to the built-in task rows as one more source (weighted "
        "like the others; your label wins where a built-in row has the same prompt)",
    )
    parser.add_argument(
        "--outcomes",
        type=Path,
        help="JSONL: prompt, local_ok, frontier_ok (or a `switchyard outcomes export` file); "
        "replaces the built-in outcome data",
    )
    parser.add_argument(
        "--team-outcomes",
        type=Path,
        help="a `switchyard outcomes export` file, combined with the built-in (or --outcomes) "
        "outcome data; partial outcomes used as docs/model-card-classifier.md says",
    )
    parser.add_argument(
        "--team-weight",
        type=int,
        default=DEFAULT_TEAM_WEIGHT,
        help=f"how many times each --team-outcomes row counts (default {DEFAULT_TEAM_WEIGHT})",
    )
    parser.add_argument(
        "--team-holdout-percent",
        type=int,
        default=20,
        help="share of --team-outcomes rows held out from training, for evaluate / promote on "
        "the same file (default 20; 0: train on all of them and evaluate on a later export)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"built-in datasets (prompts/, outcomes/); default ${DATA_DIR_ENV}, or "
        "../shared/datasets next to the checkout when run from one",
    )
    parser.add_argument(
        "--no-builtin-data",
        action="store_true",
        help="use only --labels / --outcomes, not the built-in datasets",
    )
    parser.add_argument(
        "--train-cap",
        type=int,
        default=1000,
        help="max training rows per task type and source (your --labels: per task type)",
    )
    parser.add_argument("--eval-cap", type=int, default=500, help="max held-out rows per task type")
    parser.add_argument(
        "--outcome-limit", type=int, default=None, help="use at most N outcome rows"
    )
    parser.add_argument(
        "--fine-tune-epochs",
        type=int,
        default=FineTuneRecipe.epochs,
        help="passes that train the encoder's last layer on the task rows before the heads "
        "(needs torch; 0: the encoder as published)",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="threads for embedding and fine-tuning"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache embeddings here between builds (results are identical)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from switchyard.training.build import BuildConfig, build_model

    args = _parser().parse_args(argv)
    if args.fine_tune_epochs < 0:
        print("error: --fine-tune-epochs must be 0 or more", file=sys.stderr)
        return 2
    prompts_dir: Path | None = None
    outcomes = args.outcomes
    mmlu_file: Path | None = None
    if not args.no_builtin_data:
        try:
            data_dir = resolve_data_dir(args.data_dir)
        except DataDirError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        prompts_dir = data_dir / "prompts"
        builtin_outcomes = data_dir / DEFAULT_OUTCOMES_FILE
        if builtin_outcomes.is_file():
            mmlu_file = builtin_outcomes  # its questions are task-type rows too (by subject)
        if outcomes is None and args.labels is None:
            outcomes = builtin_outcomes
    if args.team_weight < 1:
        print("error: --team-weight must be a whole number >= 1", file=sys.stderr)
        return 2
    if not 0 <= args.team_holdout_percent <= 90:
        print("error: --team-holdout-percent must be 0 to 90", file=sys.stderr)
        return 2
    if prompts_dir is None and args.labels is None:
        print("error: --no-builtin-data needs --labels", file=sys.stderr)
        return 2
    if args.add_labels is not None and (args.labels is not None or prompts_dir is None):
        print(
            "error: --add-labels adds to the built-in task rows: not with --labels or "
            "--no-builtin-data",
            file=sys.stderr,
        )
        return 2
    config = BuildConfig(
        out=args.out,
        prompts_dir=prompts_dir,
        mmlu_file=mmlu_file,
        outcomes_file=outcomes,
        labels_file=args.labels,
        added_labels_file=args.add_labels,
        train_cap=args.train_cap,
        eval_cap=args.eval_cap,
        outcome_limit=args.outcome_limit,
        team_outcomes_file=args.team_outcomes,
        team_weight=args.team_weight,
        team_held_out_percent=args.team_holdout_percent,
        threads=args.threads,
        cache_dir=args.cache_dir,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        fine_tune=FineTuneRecipe(epochs=args.fine_tune_epochs) if args.fine_tune_epochs else None,
    )
    try:
        build_model(config)
    except (DataFileError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
