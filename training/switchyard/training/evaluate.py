"""The model card's generalisation checks, beyond the build's held-out metrics.

    python -m switchyard.training.evaluate --model DIR [--data-dir D] [--cache-dir C]

1. Unseen sources: accuracy (and the confusion matrix) of the model in DIR on hand-labelled
   prompts the task head never trains on: ``unseen.UNSEEN_LABELS`` (set 1, 47 prompts; looked
   at while choosing the v1 recipe), ``tests/unit/classifier/data/unseen_fresh.jsonl`` (set 2,
   91 prompts, labelled before any tuning) and ``unseen_ours.jsonl`` (set 3, 104 prompts the
   project wrote for the formats issue 14 names, labelled before any model output was seen) and
   ``unseen_real_users.jsonl`` (set 4, 482 real users' prompts: every other row of the two
   unlabelled real-user datasets, labelled by the project by written rules before any model
   output was seen). Sets 2, 3 and 4 are never used to choose the shipped recipe.
2. Leave-source-out (``validation.py``): the shipped task recipe refitted with whole sources
   left out (5 folds, every source left out once), accuracy per left-out source and the worst.
   The recipe (C) was chosen on this check, so it is cross-validation, not a test.
3. Escalation by held-out group: the escalation recipe refitted without a group of MMLU
   subjects and scored on it, next to prompt length and random ordering: each of 5 folds of
   subjects (leave-subject-out) and each of MMLU's 4 subject categories (leave-category-out,
   the nearest to a new dataset the outcome data allows). The rows are embedded with the
   fine-tuned encoder the build uses (cached in --cache-dir under the build's key).
4. Fine-tuning by leave-source-out (``--fine-tune-check``; about an hour on 2 cores): check 2's
   folds with the encoder's last layer fine-tuned on each fold's training rows alone
   (``fine_tune.py``) against the same layer as published, both computed in fp32 by torch
   and scored by the shipped task recipe; so a left-out source is unseen by the encoder too.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from switchyard.classifier.model import ClassifierModel
from switchyard.classifier.taxonomy import TASK_TYPE_NAMES
from switchyard.training.balance import balanced_weights
from switchyard.training.build import (
    SEED,
    BuildConfig,
    TrainingRows,
    embed_rows,
    fine_tuned_encoder,
    fit_heads,
    make_embedder,
    outcome_group,
    select_rows,
    select_training_task_rows,
)
from switchyard.training.cli import DEFAULT_OUTCOMES_FILE, checkout_root, resolve_data_dir
from switchyard.training.data import load_dataset_prompts
from switchyard.training.embedder import Embedder
from switchyard.training.encoder import locate_encoder_files
from switchyard.training.escalation import (
    TransferFeatures,
    escalation_report,
    fit_escalation,
    held_out_groups,
)
from switchyard.training.fine_tune import (
    FineTuneRecipe,
    LowerStates,
    features,
    fine_tune,
    lower_states,
)
from switchyard.training.records import LabeledPrompt
from switchyard.training.task_head import fit_task_head
from switchyard.training.tokens import bag_of_tokens
from switchyard.training.unseen import UNSEEN_LABELS
from switchyard.training.validation import leave_source_out

__all__ = [
    "FRESH_UNSEEN_FILE",
    "LSO_ROWS_PER_SOURCE",
    "OURS_UNSEEN_FILE",
    "REAL_USERS_UNSEEN_FILE",
    "confusion",
    "fine_tune_check",
    "lso_universe",
    "main",
    "reference_mix",
]

_root = checkout_root()
_data = None if _root is None else _root / "tests" / "unit" / "classifier" / "data"
# The fresh unseen-source set and the project's own (see tests/unit/classifier/data/README.md).
FRESH_UNSEEN_FILE = None if _data is None else _data / "unseen_fresh.jsonl"
OURS_UNSEEN_FILE = None if _data is None else _data / "unseen_ours.jsonl"
REAL_USERS_UNSEEN_FILE = None if _data is None else _data / "unseen_real_users.jsonl"
# Rows scored per left-out source in the leave-source-out check (a seeded sample).
LSO_ROWS_PER_SOURCE = 300


def _unseen_rows(prompts_dir: Path) -> list[tuple[str, str, str]]:
    rows = []
    for stem in ("arena_hard_v0.1", "self_instruct_user_oriented"):
        with (prompts_dir / f"{stem}.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                label = UNSEEN_LABELS.get(f"{stem}/{record['id']}")
                if label:
                    rows.append((stem, record["prompt"], label))
    return rows


def _fresh_rows(path: Path) -> list[tuple[str, str, str]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            rows.append((record["id"].split("/")[0], record["prompt"], record["task_type"]))
    return rows


def reference_mix(prompts_dir: Path) -> list[tuple[str, str, str]]:
    """The three unseen sets together (source, prompt, task type): traffic-like prompts no model
    trains on (``thresholds.py`` reads the shipped score's distribution on them)."""
    rows = _unseen_rows(prompts_dir)
    for path in (FRESH_UNSEEN_FILE, OURS_UNSEEN_FILE):
        if path is None:
            raise ValueError("the unseen-source sets are in a checkout: tests/unit/classifier/data")
        rows += _fresh_rows(path)
    return rows


def confusion(labels: list[str], predicted: list[str]) -> dict[str, dict[str, int]]:
    """true task type -> {predicted task type: count}, misses only listed where nonzero."""
    out: dict[str, dict[str, int]] = {}
    for label, got in zip(labels, predicted, strict=True):
        row = out.setdefault(label, {})
        row[got] = row.get(got, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def _unseen(model: ClassifierModel, rows: list[tuple[str, str, str]]) -> dict[str, object]:
    predictions = model.predict([p for _, p, _ in rows])
    names = model.manifest.task_types
    got = [names[int(np.argmax(p.task_probabilities))] for p in predictions]
    misses = [
        {"source": s, "label": label, "predicted": g, "prompt": prompt[:80]}
        for (s, prompt, label), g in zip(rows, got, strict=True)
        if g != label
    ]
    by_source = {}
    for stem in sorted({s for s, _, _ in rows}):
        sel = [g == label for (s, _, label), g in zip(rows, got, strict=True) if s == stem]
        by_source[stem] = {"n": len(sel), "accuracy": float(np.mean(sel))}
    correct = [g == label for (_, _, label), g in zip(rows, got, strict=True)]
    return {
        "n": len(rows),
        "accuracy": float(np.mean(correct)),
        "by_source": by_source,
        "confusion": confusion([label for _, _, label in rows], got),
        "misses": misses,
    }


def lso_universe(
    prompts_dir: Path, mmlu_file: Path | None
) -> tuple[list[LabeledPrompt], int, np.ndarray]:
    """The leave-source-out check's rows: (the shipped recipe's training rows, then up to
    LSO_ROWS_PER_SOURCE rows of each source in the datasets' own text; how many of them are
    training rows; their task-type indices)."""
    from switchyard.training.balance import source_of

    rows = [r for r in load_dataset_prompts(prompts_dir, mmlu_file=mmlu_file) if r.task_type]
    rng = random.Random(SEED)
    train = select_training_task_rows(rows, 1000, rng)
    by_source: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_source.setdefault(source_of(r.group), []).append(i)
    scored = sorted(
        i
        for idx in by_source.values()
        for i in (idx if len(idx) <= LSO_ROWS_PER_SOURCE else rng.sample(idx, LSO_ROWS_PER_SOURCE))
    )
    universe = train + [rows[i] for i in scored]
    labels = np.array([TASK_TYPE_NAMES.index(r.task_type) for r in universe])
    return universe, len(train), labels


def leave_source_out_check(
    embedder: Embedder, prompts_dir: Path, mmlu_file: Path | None, log: Callable[[str], None]
) -> dict[str, object]:
    """Check 2: the shipped task recipe with whole sources left out."""
    from switchyard.training.balance import source_of

    universe, n_train, labels = lso_universe(prompts_dir, mmlu_file)
    test_rows = universe[n_train:]
    trainable = np.arange(len(universe)) < n_train
    x, _, ends = embedder.embed([r.prompt for r in universe], log)
    bags = bag_of_tokens(embedder.token_ids([r.prompt for r in universe]))

    def recipe(fit_idx: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        fit_rows = [universe[i] for i in fit_idx]
        head = fit_task_head(  # every row fitted: a temperature does not change the argmax
            x[fit_idx],
            labels[fit_idx],
            len(TASK_TYPE_NAMES),
            sample_weight=balanced_weights(fit_rows),
            bags=bags[fit_idx],  # type: ignore[index]
            ends=ends[fit_idx],
            calibrate=False,
        )
        return lambda idx: head.probabilities(x[idx], bags[idx], ends[idx]).argmax(axis=1)  # type: ignore[index]

    # Only the scored rows are reported; the training rows of a left-out source are dropped
    # from its fold's fit by leave_source_out (they belong to the left-out source).
    result = leave_source_out(universe, labels, trainable, recipe, log=log)
    keep = ~trainable
    predicted = np.asarray(result.pop("predicted"))
    correct = predicted[keep] == labels[keep]
    sources = np.array([source_of(r.group) for r in test_rows])
    per_source: dict[str, dict[str, object]] = {}
    for source in sorted(set(sources)):
        sel = sources == source
        entry: dict[str, object] = {"n": int(sel.sum()), "accuracy": float(correct[sel].mean())}
        kinds = sorted({test_rows[i].task_type for i in np.nonzero(sel)[0]}, key=str)
        if len(kinds) > 1:
            entry["by_task_type"] = {
                str(k): float(correct[sel & np.array([r.task_type == k for r in test_rows])].mean())
                for k in kinds
            }
        wrong = [TASK_TYPE_NAMES[int(predicted[keep][i])] for i in np.nonzero(sel & ~correct)[0]]
        entry["read_as"] = dict(Counter(wrong).most_common(3))
        per_source[source] = entry
    accuracies = {s: float(v["accuracy"]) for s, v in per_source.items()}  # type: ignore[arg-type]
    worst = min(accuracies, key=lambda s: accuracies[s])
    return {
        "folds": result["folds"],
        "rows_scored": len(test_rows),
        "pooled_accuracy": float(correct.mean()),
        "mean_over_sources": float(np.mean(list(accuracies.values()))),
        "worst_source": {"source": worst, "accuracy": accuracies[worst]},
        "confusion": confusion(
            [r.task_type or "" for r in test_rows],
            [TASK_TYPE_NAMES[int(p)] for p in predicted[keep]],
        ),
        "per_source": per_source,
    }


def _summary(
    result: dict[str, object], trainable: np.ndarray, labels: np.ndarray, sources: np.ndarray
) -> dict[str, object]:
    """Check 4's report for one arm: pooled, mean over sources, worst, each source's."""
    keep = ~trainable
    correct = np.asarray(result["predicted"])[keep] == labels[keep]
    accuracies = {
        str(s): float(correct[sources == s].mean()) for s in sorted(set(sources.tolist()))
    }
    worst = min(accuracies, key=lambda s: accuracies[s])
    return {
        "pooled_accuracy": float(correct.mean()),
        "mean_over_sources": float(np.mean(list(accuracies.values()))),
        "worst_source": {"source": worst, "accuracy": accuracies[worst]},
        "per_source": accuracies,
    }


def fine_tune_check(
    prompts_dir: Path,
    mmlu_file: Path | None,
    recipe: FineTuneRecipe,
    threads: int,
    log: Callable[[str], None],
) -> dict[str, object]:
    """Check 4: check 2's folds with the last layer fine-tuned per fold against as published."""
    import torch
    from safetensors.numpy import load_file

    from switchyard.classifier.model import PromptTokenizer
    from switchyard.training.balance import source_of
    from switchyard.training.build import HEAD_TOKENS, MAX_TOKENS

    torch.set_num_threads(threads)
    files = locate_encoder_files()
    published = load_file(str(files.weights))
    universe, n_train, labels = lso_universe(prompts_dir, mmlu_file)
    trainable = np.arange(len(universe)) < n_train
    tokenizer = PromptTokenizer(files.tokenizer, MAX_TOKENS, HEAD_TOKENS)
    token_ids = [ids for ids, _ in tokenizer.encode_each([r.prompt for r in universe])]
    bags = bag_of_tokens(token_ids)
    log(f"  frozen layers for {len(universe)} rows ...")
    lower = lower_states(published, token_ids, log)

    def head_recipe(
        x: np.ndarray, ends: np.ndarray, fit_idx: np.ndarray
    ) -> Callable[[np.ndarray], np.ndarray]:
        head = fit_task_head(
            x[fit_idx],
            labels[fit_idx],
            len(TASK_TYPE_NAMES),
            sample_weight=balanced_weights([universe[i] for i in fit_idx]),
            bags=bags[fit_idx],  # type: ignore[index]
            ends=ends[fit_idx],
            calibrate=False,
        )
        return lambda idx: head.probabilities(x[idx], bags[idx], ends[idx]).argmax(axis=1)  # type: ignore[index]

    plain_x, plain_ends = features(published, lower)

    def tuned_recipe(fit_idx: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        fold_rows = LowerStates(
            [lower.states[i] for i in fit_idx],
            [lower.frozen_ends[i] for i in fit_idx],
            [token_ids[i] for i in fit_idx],
        )
        weights = balanced_weights([universe[i] for i in fit_idx])
        tuned = fine_tune(
            published, fold_rows, labels[fit_idx], len(TASK_TYPE_NAMES), weights, recipe, log
        )
        x, ends = features(tuned, lower)
        return head_recipe(x, ends, fit_idx)

    sources = np.array([source_of(r.group) for r in universe])[~trainable]
    plain = leave_source_out(
        universe, labels, trainable, lambda idx: head_recipe(plain_x, plain_ends, idx), log=log
    )
    tuned = leave_source_out(universe, labels, trainable, tuned_recipe, log=log)
    return {
        "recipe": asdict(recipe),
        "rows_scored": int((~trainable).sum()),
        "published": _summary(plain, trainable, labels, sources),
        "fine_tuned": _summary(tuned, trainable, labels, sources),
    }


def escalation_check(
    rows: TrainingRows, embedder: Embedder, log: Callable[[str], None]
) -> dict[str, object]:
    """Check 3: the escalation recipe refitted without each held-out group of subjects."""
    embedded = embed_rows(rows, embedder, lambda _: None)
    fitted = fit_heads(rows, embedded, lambda _: None)
    records = rows.outcome_train + rows.outcome_eval
    x, n, ends = embedder.embed([r.prompt for r in records])
    log_n = np.log(n.reshape(-1).astype(np.float64))
    local = np.array([r.local_ok for r in records])
    frontier = np.array([r.frontier_ok for r in records])
    subjects = np.array([r.subject for r in records])
    cx = np.clip(fitted.complexity.predict(x), 0.0, 1.0)  # type: ignore[attr-defined]
    probs = fitted.task.probabilities(
        x, bag_of_tokens(embedder.token_ids([r.prompt for r in records])), ends
    )
    out: dict[str, object] = {}
    for name, members in held_out_groups(list(subjects)).items():
        held = np.isin(subjects, members)
        kept = ~held

        def part(sel: np.ndarray) -> TransferFeatures:
            return TransferFeatures(log_n[sel], cx[sel], probs[sel])

        fit = fit_escalation(
            x[kept],
            log_n[kept],
            local[kept],
            frontier[kept],
            [outcome_group(r) for r, k in zip(records, kept, strict=True) if k],
            part(kept),
            embedded.task_train.x,
        )
        p = fit.probability(x[held], log_n[held], part(held))
        report = escalation_report(
            {
                "model": p,
                "prompt_length": n[held].ravel(),
                "outcome_model_alone": fit.outcome.score(x[held], log_n[held]),
                "complexity": cx[held],
            },
            local[held],
            frontier[held],
        )
        report["subjects"] = members
        report["mean_trust"] = float(fit.trust(x[held]).mean())
        report["chosen"] = {k: fit.report[k] for k in ("alpha", "lambda", "kappa", "gamma")}
        out[name] = report
        log(
            f"  {name}: model {report['model']['apgr']:.3f}, "  # type: ignore[index]
            f"length {report['prompt_length']['apgr']:.3f}"  # type: ignore[index]
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fresh", type=Path, default=FRESH_UNSEEN_FILE)
    parser.add_argument("--ours", type=Path, default=OURS_UNSEEN_FILE)
    parser.add_argument("--real-users", type=Path, default=REAL_USERS_UNSEEN_FILE)
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["unseen", "sources", "escalation"]
    )
    parser.add_argument(
        "--fine-tune-check",
        action="store_true",
        help="also check 4: fine-tuning by leave-source-out (about an hour on 2 cores)",
    )
    args = parser.parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    outcomes_file = data_dir / DEFAULT_OUTCOMES_FILE

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report: dict[str, object] = {}
    if "unseen" not in args.skip:
        model = ClassifierModel(args.model)
        report["unseen_sources"] = _unseen(model, _unseen_rows(data_dir / "prompts"))
        if args.fresh is not None:
            report["unseen_sources_fresh"] = _unseen(model, _fresh_rows(args.fresh))
        if args.ours is not None:
            report["unseen_sources_ours"] = _unseen(model, _fresh_rows(args.ours))
        if args.real_users is not None:
            report["unseen_sources_real_users"] = _unseen(model, _fresh_rows(args.real_users))
    with tempfile.TemporaryDirectory() as tmp:
        _, embedder = make_embedder(locate_encoder_files(), Path(tmp), args.threads, args.cache_dir)
        if "sources" not in args.skip:
            log("leave-source-out ...")
            report["leave_source_out"] = leave_source_out_check(
                embedder, data_dir / "prompts", outcomes_file, log
            )
        if "escalation" not in args.skip:
            log("escalation by held-out group ...")
            config = BuildConfig(
                out=Path(tmp),
                prompts_dir=data_dir / "prompts",
                mmlu_file=outcomes_file,
                outcomes_file=outcomes_file,
                log=lambda _: None,
            )
            config.cache_dir = args.cache_dir
            rows = select_rows(config, {})
            tuned, _ = fine_tuned_encoder(config, rows, locate_encoder_files(), Path(tmp))
            _, tuned_embedder = make_embedder(tuned, Path(tmp), args.threads, args.cache_dir)
            report["escalation_held_out_groups"] = escalation_check(rows, tuned_embedder, log)
        if args.fine_tune_check:
            log("leave-source-out, fine-tuned against published ...")
            report["fine_tune_leave_source_out"] = fine_tune_check(
                data_dir / "prompts", outcomes_file, FineTuneRecipe(), args.threads, log
            )
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
