"""Extra checks for the model card, beyond the build's held-out metrics.

    python -m switchyard.training.evaluate --model DIR [--data-dir D] [--cache-dir C]

1. Unseen sources: accuracy of the model in DIR on hand-labelled prompts from datasets the task
   head never trains on: ``unseen.UNSEEN_LABELS`` (47 prompts; looked at while choosing the
   recipe) and ``tests/unit/classifier/data/unseen_fresh.jsonl`` (91 prompts, labelled before
   any tuning and never used to choose anything; the cleaner number).
2. Whole sources held out: the task head's recipe (boilerplate rewriting, source balancing)
   refitted without some whole datasets / templates, scored on exactly those (how well it
   generalises beyond its sources). Two folds: ``HELD_OUT_SOURCES`` and ``HELD_OUT_SOURCES_B``;
   the recipe's C was chosen on these folds, so they are cross-validation, not a test.
3. Escalation split by subject: the escalation recipe refitted without ~20% of MMLU subjects,
   scored on those subjects, next to random and prompt-length ordering.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

from switchyard.classifier.model import ClassifierModel
from switchyard.classifier.taxonomy import TASK_TYPE_NAMES
from switchyard.training import metrics
from switchyard.training.balance import balanced_weights
from switchyard.training.build import (
    HELD_OUT_PERCENT,
    SEED,
    Embedder,
    _cap,
    _fit_escalation,
    _fit_task_head,
    neutralised_rows,
)
from switchyard.training.cli import DEFAULT_OUTCOMES_FILE, default_data_dir
from switchyard.training.data import (
    held_out,
    load_dataset_prompts,
    read_outcome_file,
)
from switchyard.training.encoder import (
    build_encoder_graph,
    locate_encoder_files,
    sha256_file,
)
from switchyard.training.heads import softmax
from switchyard.training.unseen import UNSEEN_LABELS

__all__ = ["FRESH_UNSEEN_FILE", "HELD_OUT_SOURCES", "HELD_OUT_SOURCES_B", "main"]

# Whole datasets / templates left out of the refit in check 2.
HELD_OUT_SOURCES = (
    "college_math",
    "mbpp",
    "scibench/atkins",
    "theoremqa/EECS",
    "bbh/navigate",
    "bbh/web_of_lies",
    "p3/xsum_DOC_tldr",
    "p3/quoref_Read_And_Extract_",
    "p3/trec_which_category_best_describes",
    "p3/kilt_tasks_hotpotqa_straighforward_qa",
    "authored/creative_poem/0",
    "authored/review_diff/0",
)
# A second fold of whole sources.
HELD_OUT_SOURCES_B = (
    "simpleqa",
    "debugbench",
    "gsm8k_train",
    "p3/dbpedia_14_pick_one_category_for_the_following_text",
    "p3/cnn_dailymail_3_0_0_sum_in_brief",
    "p3/wiki_bio_key_content",
    "bbh/date_understanding",
    "bbh/word_sorting",
    "humaneval",
    "olympiadbench/Physics",
    "authored/chat_howto",
    "authored/creative_story",
    "eqbench_creative_writing",
    "authored/summ_request",
)
# The fresh unseen-source set (see tests/unit/classifier/data/README.md), in the checkout.
FRESH_UNSEEN_FILE = (
    Path(__file__).resolve().parents[3]
    / "tests"
    / "unit"
    / "classifier"
    / "data"
    / "unseen_fresh.jsonl"
)


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
    for stem in ("arena_hard_v0.1", "self_instruct_user_oriented"):
        sel = [g == label for (s, _, label), g in zip(rows, got, strict=True) if s == stem]
        by_source[stem] = {"n": len(sel), "accuracy": float(np.mean(sel))}
    correct = [g == label for (_, _, label), g in zip(rows, got, strict=True)]
    return {
        "n": len(rows),
        "accuracy": float(np.mean(correct)),
        "by_source": by_source,
        "misses": misses,
    }


def _held_sources(
    embedder: Embedder, prompts_dir: Path, sources: tuple[str, ...]
) -> dict[str, object]:
    rows = [r for r in load_dataset_prompts(prompts_dir) if r.task_type is not None]

    def in_held(group: str) -> bool:
        return any(group == g or group.startswith(g + "/") for g in sources)

    rng = random.Random(SEED)
    train = _cap(
        [
            r
            for r in rows
            if not in_held(r.group)
            and not held_out(r.group if r.group.startswith("authored/") else r.id, HELD_OUT_PERCENT)
        ],
        2500,
        rng,
    )
    train = neutralised_rows(train)
    test = [r for r in rows if in_held(r.group)]
    test = sorted(rng.sample(test, min(len(test), 1500)), key=lambda r: r.id)
    x, _ = embedder.embed([r.prompt for r in train], lambda _: None)
    y = np.array([TASK_TYPE_NAMES.index(r.task_type) for r in train])
    weights, bias, _, _ = _fit_task_head(
        x, y, len(TASK_TYPE_NAMES), lambda _: None, balanced_weights(train)
    )
    xt, _ = embedder.embed([r.prompt for r in test], lambda _: None)
    pred = softmax(xt @ weights + bias).argmax(axis=1)
    out: dict[str, object] = {}
    for source in sources:
        sel = [
            i for i, r in enumerate(test) if r.group == source or r.group.startswith(source + "/")
        ]
        if sel:
            truth = TASK_TYPE_NAMES.index(test[sel[0]].task_type)
            out[source] = {
                "label": TASK_TYPE_NAMES[truth],
                "n": len(sel),
                "accuracy": float(np.mean(pred[sel] == truth)),
            }
    truth_all = np.array([TASK_TYPE_NAMES.index(r.task_type) for r in test])
    out["all"] = {"n": len(test), "accuracy": float(np.mean(pred == truth_all))}
    per_source = [v["accuracy"] for v in out.values() if isinstance(v, dict) and "label" in v]
    out["mean_over_sources"] = float(np.mean(per_source))
    return out


def _by_subject(embedder: Embedder, outcomes_file: Path) -> dict[str, object]:
    records = read_outcome_file(outcomes_file)
    held = [o for o in records if held_out("subject:" + o.subject, 20)]
    kept = [o for o in records if not held_out("subject:" + o.subject, 20)]
    x, n = embedder.embed([o.prompt for o in kept], lambda _: None)
    xt, nt = embedder.embed([o.prompt for o in held], lambda _: None)
    model = _fit_escalation(
        x,
        np.log(n),
        np.array([o.local_ok for o in kept]),
        np.array([o.frontier_ok for o in kept]),
        lambda _: None,
    )
    scores = model.predict_proba(np.hstack([xt, np.log(nt)]))
    local = np.array([o.local_ok for o in held])
    frontier = np.array([o.frontier_ok for o in held])
    result: dict[str, object] = {
        "held_out_subjects": sorted({o.subject for o in held}),
        "held_out_rows": len(held),
    }
    draws = np.random.default_rng(SEED).random((100, len(held)))
    runs = [metrics.apgr_and_cpt(d, local, frontier) for d in draws]
    result["random_mean_of_100"] = {
        "apgr": float(np.mean([r[0] for r in runs])),
        "cpt50": float(np.mean([r[1] for r in runs])),
    }
    for name, s in (("model", scores), ("prompt_length", nt.ravel())):
        apgr, cpt = metrics.apgr_and_cpt(s, local, frontier)
        result[name] = {"apgr": apgr, "cpt50": cpt}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fresh", type=Path, default=FRESH_UNSEEN_FILE)
    args = parser.parse_args(argv)
    data_dir = args.data_dir or default_data_dir()
    model = ClassifierModel(args.model)
    files = locate_encoder_files()
    with tempfile.TemporaryDirectory() as tmp:
        encoder_path = Path(tmp) / "encoder.onnx"
        onnx.save(build_encoder_graph(files.weights, int8=True), encoder_path)
        embedder = Embedder(
            encoder_path, files.tokenizer, args.threads, args.cache_dir, sha256_file(encoder_path)
        )
        report = {
            "unseen_sources": _unseen(model, _unseen_rows(data_dir / "prompts")),
            "unseen_sources_fresh": _unseen(model, _fresh_rows(args.fresh)),
            "whole_sources_held_out": _held_sources(
                embedder, data_dir / "prompts", HELD_OUT_SOURCES
            ),
            "whole_sources_held_out_b": _held_sources(
                embedder, data_dir / "prompts", HELD_OUT_SOURCES_B
            ),
            "escalation_by_subject": _by_subject(embedder, data_dir / DEFAULT_OUTCOMES_FILE),
        }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
