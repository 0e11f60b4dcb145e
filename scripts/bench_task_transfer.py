#!/usr/bin/env python3
"""Does labelling real users' prompts help on *other* users' prompts? Prints the model card's
"Real users' prompts" table (issue 14).

Fits the shipped task recipe (``build.select_training_task_rows`` + ``fit_task_head``, the
same rows, weights and C as ``switchyard-classifier train``) four times: as shipped, and with the
labelled real-user prompts of set 4 (``tests/unit/classifier/data/unseen_real_users.jsonl``) of
arena-hard, of self-instruct (user-oriented) or of both added to its training rows (the build's
15% held-out split of them left out, like any row). Each fit is scored on sets 1 + 2 (prompts of
the same two datasets, never in set 4) by source, and on set 3. A source's rows scored by a fit
that added only the *other* source's rows measure transfer to a source it never saw; those scored
by a fit that added the same source's rows measure what labelling one's own traffic buys.

    python scripts/bench_task_transfer.py [--data-dir D] [--cache-dir C] [--prefixed-ids]

Rows are keyed by their dataset's bare id, as ``switchyard-classifier train`` keys them;
``--prefixed-ids`` keys them ``dataset/id`` instead, which draws another 15% held-out split of
the added rows: a check of how much the draw alone moves the table.

Task-head fits only (no ONNX graph is written); the embedding is the shipped int8 encoder's.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import numpy as np

from switchyard.classifier.taxonomy import TASK_TYPE_NAMES
from switchyard.training import evaluate
from switchyard.training.balance import balanced_weights
from switchyard.training.build import SEED, make_embedder, select_training_task_rows
from switchyard.training.cli import resolve_data_dir
from switchyard.training.data import load_dataset_prompts
from switchyard.training.encoder import locate_encoder_files
from switchyard.training.records import LabeledPrompt
from switchyard.training.task_head import TaskHead, fit_task_head
from switchyard.training.tokens import bag_of_tokens

SOURCES = ("arena_hard_v0.1", "self_instruct_user_oriented")
VARIANTS = {
    "shipped recipe": (),
    "+ arena-hard rows": ("arena_hard_v0.1",),
    "+ self-instruct rows": ("self_instruct_user_oriented",),
    "+ both": SOURCES,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prefixed-ids", action="store_true")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    assert evaluate.REAL_USERS_UNSEEN_FILE is not None and evaluate.FRESH_UNSEEN_FILE is not None
    assert evaluate.OURS_UNSEEN_FILE is not None
    real_users = [
        json.loads(line)
        for line in evaluate.REAL_USERS_UNSEEN_FILE.read_text(encoding="utf-8").splitlines()
    ]
    base = [
        r
        for r in load_dataset_prompts(
            data_dir / "prompts", mmlu_file=data_dir / "outcomes" / "mmlu_mixtral_vs_gpt4.jsonl"
        )
        if r.task_type
    ]
    sets_1_2 = evaluate._unseen_rows(data_dir / "prompts") + evaluate._fresh_rows(
        evaluate.FRESH_UNSEEN_FILE
    )
    set_3 = evaluate._fresh_rows(evaluate.OURS_UNSEEN_FILE)
    with tempfile.TemporaryDirectory() as tmp:
        _, embedder = make_embedder(locate_encoder_files(), Path(tmp), args.threads, args.cache_dir)

        def features(prompts: list[str]) -> tuple[np.ndarray, object, np.ndarray]:
            x, _, ends = embedder.embed(prompts)
            return x, bag_of_tokens(embedder.token_ids(prompts)), ends

        def fit(train: list[LabeledPrompt]) -> TaskHead:
            x, bags, ends = features([r.prompt for r in train])
            y = np.array([TASK_TYPE_NAMES.index(r.task_type) for r in train])
            return fit_task_head(
                x,
                y,
                len(TASK_TYPE_NAMES),
                sample_weight=balanced_weights(train),
                bags=bags,
                ends=ends,
            )

        scored = {"sets 1+2": sets_1_2, "set 3": set_3}
        scored_x = {name: features([p for _, p, _ in rows]) for name, rows in scored.items()}
        print("| training rows | added | sets 1+2 arena-hard | sets 1+2 self-instruct | set 3 |")
        print("|---|---|---|---|---|")
        for name, added in VARIANTS.items():
            extra = []
            for r in real_users:
                dataset, _, bare_id = r["id"].partition("/")
                if dataset in added:
                    row_id = r["id"] if args.prefixed_ids else bare_id
                    extra.append(LabeledPrompt(row_id, r["prompt"], r["task_type"], None, dataset))
            train = select_training_task_rows(base + extra, 1000, random.Random(SEED))
            n_added = sum(1 for r in train if r.group in SOURCES)
            head = fit(train)
            cells = []
            for set_name, rows in scored.items():
                px, pbags, pends = scored_x[set_name]
                probs = head.probabilities(px, pbags, pends)
                got = [TASK_TYPE_NAMES[i] for i in probs.argmax(axis=1)]
                sources = SOURCES if set_name == "sets 1+2" else ("ours",)
                for source in sources:
                    pairs = zip(rows, got, strict=True)
                    hits = [g == label for (s, _, label), g in pairs if s == source]
                    cells.append(f"{np.mean(hits):.3f} ({sum(hits)}/{len(hits)})")
            print(f"| {name} | {n_added} | " + " | ".join(cells) + " |", flush=True)

        # Transfer on the larger set 4: every labelled row of one source added (no held-out
        # split: the rows scored are the other source's), scored on the other source's rows.
        base_train = select_training_task_rows(base, 1000, random.Random(SEED))
        print()
        print("| training rows | scored on set 4 rows of | shipped recipe | + the other source |")
        print("|---|---|---|---|")
        for added_source, target in (SOURCES, SOURCES[::-1]):
            target_rows = [r for r in real_users if r["id"].startswith(target + "/")]
            px, pbags, pends = features([r["prompt"] for r in target_rows])
            cells = []
            for extra_source in ((), (added_source,)):
                extra = [
                    LabeledPrompt(r["id"], r["prompt"], r["task_type"], None, added_source)
                    for r in real_users
                    if r["id"].split("/")[0] in extra_source
                ]
                head = fit(base_train + extra)
                got = head.probabilities(px, pbags, pends).argmax(axis=1)
                answers = zip(target_rows, got, strict=True)
                hits = [TASK_TYPE_NAMES[int(g)] == r["task_type"] for r, g in answers]
                cells.append(f"{np.mean(hits):.3f} ({sum(hits)}/{len(hits)})")
            row = f"| + {len(extra)} {added_source} | {target} | " + " | ".join(cells) + " |"
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
