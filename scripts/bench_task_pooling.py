#!/usr/bin/env python3
"""Would the task head read the ask better from the prompt's two ends? Prints the model card's
"Pooling the ends" tables (issue 14): the experiments that chose the shipped `end_states`
(K = 4, x1, at the last layer; then the fourth layer's ends added, v2.4).

v2.1's task head read the mean of the encoder's token states over the whole window (and three
bags of wordpieces, `tokens.py`). Where a prompt says what it wants is usually its first or
last few words, and the mean over 256 tokens mostly says what the prompt is about. This script
asks whether adding the mean of the encoder's *contextual* states of the first K and the last K
tokens (inside [CLS] ... [SEP]; one more masked mean each over the same encoder run, no extra
encoder pass) helps on sources the head never saw. It computes the ends itself from the hidden
states, for any K; the shipped graph's `end_states` output is its K = 4 at layers 6 and 4
(checked against the hidden states by tests/unit/classifier/test_classifier_encoder.py).

Features come from the int8 encoder graph (`build_encoder_graph`) with its hidden states
exposed, one unpadded run per prompt length (as `Embedder` runs it). Each variant is the task
recipe (`fit_task_head` on source-balanced rows, C = 16, with the token bags) with the end
vectors (L2-normalised, times `--weights`) appended to the embedding. With `--layers L ...`
the variants are instead the last layer's first/last 4 (v2.3) plus, for each earlier layer L,
its all-token mean, its first/last 4, or both. Each is scored

- by leave-source-out (`evaluate.lso_universe` and `validation.leave_source_out`: the rows,
  folds and per-source sample of `python -m switchyard.training.evaluate`): mean accuracy over
  sources, pooled accuracy, the worst source. **The choice between variants is made on this
  alone**;
- on the unseen-source sets 1-4 (model card), with the head fitted on every training row (no
  temperature: it does not change the argmax), for the record.

    python scripts/bench_task_pooling.py [--ks 4 8] [--weights 1] [--data-dir D] [--cache-dir C]
    python scripts/bench_task_pooling.py --ks 4 --layers 2 4 [--data-dir D] [--cache-dir C]
    python scripts/bench_task_pooling.py --ks 4 --base-ends 4 --layers 2 3 5 --means 4 5

Task-head fits only: nothing here builds or ships a model (`switchyard-classifier train` does).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from switchyard.classifier.model import PromptTokenizer
from switchyard.classifier.taxonomy import TASK_TYPE_NAMES
from switchyard.training import evaluate
from switchyard.training.balance import balanced_weights, source_of
from switchyard.training.build import HEAD_TOKENS, MAX_TOKENS
from switchyard.training.cli import resolve_data_dir
from switchyard.training.embedder import prompt_key, run_by_length
from switchyard.training.encoder import (
    END_TOKENS,
    HIDDEN,
    LAYERS,
    build_encoder_graph,
    expose_layer_states,
    locate_encoder_files,
    sha256_file,
)
from switchyard.training.task_head import fit_task_head
from switchyard.training.tokens import bag_of_tokens
from switchyard.training.validation import leave_source_out


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class EndStates:
    """Per prompt: the shipped embedding, then the mean state of the first and last K tokens
    for each K of `ks`, then for each of `layers` (an earlier encoder layer) the mean state of
    all its tokens and of the first and last END_TOKENS (cached under `cache_dir`, keyed by the
    encoder's hash, the Ks and the layers)."""

    def __init__(
        self, ks: Sequence[int], workdir: Path, cache_dir: Path | None, layers: Sequence[int] = ()
    ) -> None:
        import onnxruntime as ort

        files = locate_encoder_files()
        model = build_encoder_graph(files.weights, int8=True)
        # the last layer's states (what the mean pooling reads), then the earlier layers'
        self.layers = tuple(layers)
        hidden, *self._layer_outputs = expose_layer_states(model, (LAYERS, *self.layers))
        path = workdir / "encoder-states.onnx"
        onnx.save(model, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._hidden = hidden
        self.tokenizer = PromptTokenizer(files.tokenizer, MAX_TOKENS, HEAD_TOKENS)
        self.ks = tuple(ks)
        self._cache: dict[str, np.ndarray] = {}
        tag = f"{sha256_file(path)[:16]}-k{'_'.join(map(str, self.ks))}"
        tag += f"-l{'_'.join(map(str, self.layers))}" if self.layers else ""
        self._file = cache_dir / f"end-states-{tag}.npz" if cache_dir else None
        if self._file is not None and self._file.is_file():
            data = np.load(self._file)
            self._cache = {str(k): v for k, v in zip(data["keys"], data["vectors"], strict=True)}

    def __call__(self, prompts: Sequence[str]) -> np.ndarray:
        keys = [prompt_key(p) for p in prompts]
        todo = {k: p for k, p in zip(keys, prompts, strict=True) if k not in self._cache}
        outputs = ["embedding", self._hidden, *self._layer_outputs]
        for key, (e, h, *earlier) in run_by_length(
            self._session, self.tokenizer, sorted(todo.items()), outputs
        ):
            inner = h[1:-1] if len(h) > 2 else h  # inside [CLS] ... [SEP]
            ends = [inner[:k].mean(axis=0) for k in self.ks]
            ends += [inner[-k:].mean(axis=0) for k in self.ks]
            for lh in earlier:
                body = lh[1:-1] if len(lh) > 2 else lh
                ends += [
                    lh.mean(axis=0),
                    body[:END_TOKENS].mean(axis=0),
                    body[-END_TOKENS:].mean(axis=0),
                ]
            self._cache[key] = np.concatenate([e, *ends]).astype(np.float32)
        if todo and self._file is not None:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            order = sorted(self._cache)
            np.savez(
                self._file,
                keys=np.array(order),
                vectors=np.stack([self._cache[k] for k in order]),
            )
        return np.stack([self._cache[k] for k in keys])

    def bags(self, prompts: Sequence[str]) -> object:
        return bag_of_tokens([ids for ids, _ in self.tokenizer.encode_each(list(prompts))])

    def features(
        self,
        states: np.ndarray,
        k: int | None,
        weight: float,
        extra: Sequence[tuple[int, str]] = (),
    ) -> np.ndarray:
        """The embedding, then (with `k`) the first-k and last-k means, unit length, x weight,
        then each `extra` (layer, "mean" | "ends") block of an earlier layer, unit length."""
        hidden = HIDDEN
        blocks = []
        if k is not None:
            i = self.ks.index(k)
            blocks += [(1 + i, weight), (1 + len(self.ks) + i, weight)]
        for layer, kind in extra:
            first = 1 + 2 * len(self.ks) + 3 * self.layers.index(layer)
            blocks += [(first, 1.0)] if kind == "mean" else [(first + 1, 1.0), (first + 2, 1.0)]
        parts = [states[:, :hidden]]
        for block, w in blocks:
            v = states[:, block * hidden : (block + 1) * hidden]
            parts.append(w * v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9))
        return np.concatenate(parts, axis=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument(
        "--layers",
        type=int,
        nargs="*",
        default=[],
        help="instead of the K x weight table: v2.3's features (first/last 4, x1) plus each "
        "earlier layer's all-token mean, first/last 4 ends, or both",
    )
    parser.add_argument(
        "--base-ends",
        type=int,
        nargs="*",
        default=[],
        help="with --layers: the base also reads these earlier layers' first/last 4 (v2.4: 4), "
        "and each variant adds one block to it: a --layers layer's first/last 4 or a --means "
        "layer's all-token mean",
    )
    parser.add_argument("--means", type=int, nargs="*", default=[], help="see --base-ends")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    universe, n_train, labels = evaluate.lso_universe(
        data_dir / "prompts", data_dir / "outcomes" / "mmlu_mixtral_vs_gpt4.jsonl"
    )
    trainable = np.arange(len(universe)) < n_train
    assert evaluate.FRESH_UNSEEN_FILE and evaluate.OURS_UNSEEN_FILE
    assert evaluate.REAL_USERS_UNSEEN_FILE
    sets = {
        "set 1": evaluate._unseen_rows(data_dir / "prompts"),
        "set 2": evaluate._fresh_rows(evaluate.FRESH_UNSEEN_FILE),
        "set 3": evaluate._fresh_rows(evaluate.OURS_UNSEEN_FILE),
        "set 4": evaluate._fresh_rows(evaluate.REAL_USERS_UNSEEN_FILE),
    }
    with tempfile.TemporaryDirectory() as tmp:
        layers = sorted({*args.layers, *args.base_ends, *args.means})
        ends = EndStates(args.ks, Path(tmp), args.cache_dir, layers)
        set_rows = sum(map(len, sets.values()))
        log(f"{len(universe)} rows ({n_train} training rows) and {set_rows} set rows")
        states = ends([r.prompt for r in universe])
        bags = ends.bags([r.prompt for r in universe])
        set_states = {n: ends([p for _, p, _ in s]) for n, s in sets.items()}
        set_bags = {n: ends.bags([p for _, p, _ in s]) for n, s in sets.items()}
    test_rows = universe[n_train:]
    sources = np.array([source_of(r.group) for r in test_rows])
    weights = balanced_weights(universe[:n_train])
    Variant = tuple[str, int | None, float, tuple[tuple[int, str], ...]]
    variants: list[Variant]
    if args.base_ends:
        base = tuple((layer, "ends") for layer in args.base_ends)
        name = "v2.3 + layer " + ", ".join(map(str, args.base_ends)) + " first/last 4"
        variants = [(name, END_TOKENS, 1.0, base)]
        variants += [
            (f"{name} + layer {layer} first/last 4", END_TOKENS, 1.0, (*base, (layer, "ends")))
            for layer in args.layers
        ]
        variants += [
            (f"{name} + layer {layer} mean", END_TOKENS, 1.0, (*base, (layer, "mean")))
            for layer in args.means
        ]
    elif args.layers:
        variants = [("v2.3 (+ first/last 4 tokens, x1)", END_TOKENS, 1.0, ())]
        for layer in args.layers:
            variants += [
                (f"v2.3 + layer {layer} mean", END_TOKENS, 1.0, ((layer, "mean"),)),
                (f"v2.3 + layer {layer} first/last 4", END_TOKENS, 1.0, ((layer, "ends"),)),
                (
                    f"v2.3 + layer {layer} mean and first/last 4",
                    END_TOKENS,
                    1.0,
                    ((layer, "mean"), (layer, "ends")),
                ),
            ]
    else:
        variants = [("v2.1 (mean of all tokens)", None, 1.0, ())] + [
            (f"+ first/last {k} tokens, x{w:g}", k, w, ()) for k in args.ks for w in args.weights
        ]
    table = {}
    for name, k, w, extra in variants:
        x = ends.features(states, k, w, extra)

        def recipe(fit: np.ndarray, x: np.ndarray = x):  # noqa: ANN202
            head = fit_task_head(
                x[fit], labels[fit], len(TASK_TYPE_NAMES),
                sample_weight=balanced_weights([universe[i] for i in fit]),
                bags=bags[fit], calibrate=False,  # type: ignore[index]
            )  # fmt: skip
            return lambda idx: head.probabilities(x[idx], bags[idx]).argmax(axis=1)  # type: ignore[index]

        predicted = np.asarray(leave_source_out(universe, labels, trainable, recipe)["predicted"])
        correct = predicted[n_train:] == labels[n_train:]
        by_source = {s: float(correct[sources == s].mean()) for s in sorted(set(sources))}
        worst = min(by_source, key=lambda s: by_source[s])
        row: dict[str, object] = {
            "lso_mean_over_sources": round(float(np.mean(list(by_source.values()))), 3),
            "lso_pooled": round(float(correct.mean()), 3),
            "lso_worst": f"{worst} {by_source[worst]:.2f}",
        }
        head = fit_task_head(
            x[:n_train], labels[:n_train], len(TASK_TYPE_NAMES),
            sample_weight=weights, bags=bags[:n_train], calibrate=False,  # type: ignore[index]
        )  # fmt: skip
        for set_name, rows in sets.items():
            got = head.probabilities(
                ends.features(set_states[set_name], k, w, extra), set_bags[set_name]
            )
            truth = np.array([TASK_TYPE_NAMES.index(label) for _, _, label in rows])
            hits = int((got.argmax(axis=1) == truth).sum())
            row[set_name] = f"{hits / len(rows):.3f} ({hits}/{len(rows)})"
        table[name] = row
        log(f"{name}: {json.dumps(row)}")
    print("\n| task head reads | LSO mean over sources | LSO pooled | worst source | "
          + " | ".join(sets) + " |")  # fmt: skip
    print("|---|---:|---:|---|" + "---:|" * len(sets))
    for name, row in table.items():
        print(f"| {name} | {row['lso_mean_over_sources']} | {row['lso_pooled']} | "
              f"{row['lso_worst']} | " + " | ".join(str(row[s]) for s in sets) + " |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
