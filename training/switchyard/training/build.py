"""``switchyard-classifier train``: build a model directory reproducibly.

Phases (one function each): ``select_rows`` (which prompts train and evaluate each head),
``embed_rows`` (the int8 encoder graph embeds them, so the heads learn from what the service
computes), ``fit_heads``, ``evaluate`` (held-out metrics for the manifest; in
``heldout_metrics.py``) and ``write_model`` (encoder and heads merged into one ONNX file,
``tokenizer.json``, ``manifest.json`` with the hashes of every input and output file). Same
inputs -> same bytes on the same CPU type and onnxruntime version: fixed seeds, hash-based
splits, sorted inputs, and every prompt embedded in a batch of prompts of its own token length
(no padding).
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx

from switchyard.classifier.model import MANIFEST_NAME, MODEL_FILE, TOKENIZER_FILE, PromptTokenizer
from switchyard.classifier.taxonomy import DEFAULT_CUT_POINTS, TASK_TYPE_NAMES
from switchyard.training.augment import neutralise
from switchyard.training.balance import balanced_weights, source_of
from switchyard.training.data import (
    held_out,
    load_dataset_prompts,
    normalised_prompt,
    read_label_file,
    read_outcome_file,
)
from switchyard.training.embedder import Embedder, prompt_key
from switchyard.training.encoder import (
    END_STATES,
    HIDDEN,
    EncoderFiles,
    build_encoder_graph,
    locate_encoder_files,
    sha256_file,
)
from switchyard.training.escalation import (
    EscalationFit,
    TransferFeatures,
    fit_escalation,
)
from switchyard.training.fine_tune import TUNED_LAYER, fine_tune, lower_states, recipe_key
from switchyard.training.formats import split_key
from switchyard.training.heads import END_INPUT, HEAD_IDS, HEAD_MASK, Heads, build_heads_graph
from switchyard.training.heldout_metrics import evaluate
from switchyard.training.lineage import record_trained_outcomes
from switchyard.training.phases import (
    BuildConfig,
    BuildResult,
    Embedded,
    EmbeddedRows,
    FittedHeads,
    TrainingRows,
)
from switchyard.training.records import LabeledPrompt, OutcomeRecord
from switchyard.training.task_head import TaskHead, fit_task_head
from switchyard.training.team_outcomes import (
    read_team_outcomes,
    split_for_training,
    team_rows_mask,
)
from switchyard.training.tokens import bag_of_tokens

__all__ = [
    "HEAD_TOKENS",
    "MAX_TOKENS",
    "RECIPE_VERSION",
    "BuildConfig",
    "BuildResult",
    "EmbeddedRows",
    "FittedHeads",
    "TrainingRows",
    "build_model",
    "embed_rows",
    "evaluate",
    "fine_tuned_encoder",
    "fit_heads",
    "is_held_out",
    "merge_encoder_and_heads",
    "neutralised_rows",
    "outcome_group",
    "select_rows",
    "write_model",
]

MAX_TOKENS = 256
# A prompt over the window keeps its first HEAD_TOKENS tokens and its last MAX_TOKENS - HEAD.
HEAD_TOKENS = 128
SEED = 20240601
HELD_OUT_PERCENT = 15
OUTCOME_HELD_OUT_PERCENT = 20
MODEL_NAME = "switchyard-minilm-int8"
CUSTOM_MODEL_NAME = "switchyard-custom-int8"
# The recipe's version, in the manifest next to the file hash (the model version).
# 3: v2.1 (second sources, MMLU layouts, BBH task table); 4: v2.4 (the task head reads the
# prompt's two ends at the last and the fourth layer; v2.3, the last layer only, was built and
# superseded before it landed); 5: v2.6 (the encoder's last layer fine-tuned on the task rows)
RECIPE_VERSION = 5


def is_held_out(row: LabeledPrompt) -> bool:
    """The fixed held-out split of task rows (never fitted or tuned on)."""
    return held_out(split_key(row), HELD_OUT_PERCENT)


def outcome_group(record: OutcomeRecord) -> str:
    """The unit held out together when validating escalation: the subject, else the row."""
    return record.subject or record.id


def _dedupe_opsets(model: onnx.ModelProto) -> None:
    """merge_models can list an opset twice, which breaks later tools: keep one per domain."""
    seen: dict[str, int] = {}
    for opset in model.opset_import:
        seen[opset.domain] = max(seen.get(opset.domain, 0), opset.version)
    del model.opset_import[:]
    for domain, version in sorted(seen.items()):
        model.opset_import.append(onnx.helper.make_opsetid(domain, version))


def merge_encoder_and_heads(encoder: onnx.ModelProto, heads: onnx.ModelProto) -> onnx.ModelProto:
    """One graph: the encoder's outputs feed the heads; a heads graph that reads the token ids
    gets them (and the mask) passed through the encoder, since merge_models refuses a shared
    input name."""
    io_map = [("embedding", "embedding"), ("token_count", "token_count")]
    head_inputs = {i.name for i in heads.graph.input}
    if END_INPUT in head_inputs:
        io_map.append((END_INPUT, END_INPUT))
    if HEAD_IDS in head_inputs:
        encoder = onnx.ModelProto.FromString(encoder.SerializeToString())
        for source, target in (("input_ids", HEAD_IDS), ("attention_mask", HEAD_MASK)):
            passed = f"encoder.{source}_out"
            encoder.graph.node.append(
                onnx.helper.make_node("Identity", [source], [passed], name=passed)
            )
            encoder.graph.output.append(
                onnx.helper.make_tensor_value_info(
                    passed, onnx.TensorProto.INT64, ["batch", "tokens"]
                )
            )
            io_map.append((passed, target))
    merged = onnx.compose.merge_models(
        encoder,
        heads,
        io_map=io_map,
        outputs=[o.name for o in heads.graph.output],  # an unread encoder output is not one
        producer_name="switchyard-classifier",
    )
    _dedupe_opsets(merged)
    onnx.checker.check_model(merged)
    return merged


def _cap(
    rows: list[LabeledPrompt],
    cap: int | None,
    rng: random.Random,
    key: Callable[[LabeledPrompt], Hashable] = lambda r: r.task_type or "",
) -> list[LabeledPrompt]:
    """At most ``cap`` rows per ``key`` (a seeded sample), in id order."""
    if cap is None:
        return rows
    by_key: dict[Hashable, list[LabeledPrompt]] = defaultdict(list)
    for row in rows:
        by_key[key(row)].append(row)
    kept: list[LabeledPrompt] = []
    for k in sorted(by_key, key=str):
        group = sorted(by_key[k], key=lambda r: r.id)
        kept.extend(group if len(group) <= cap else rng.sample(group, cap))
    return sorted(kept, key=lambda r: r.id)


def _type_and_source(row: LabeledPrompt) -> Hashable:
    return (row.task_type or "", source_of(row.group))


def neutralised_rows(rows: list[LabeledPrompt]) -> list[LabeledPrompt]:
    """Training rows with dataset boilerplate rewritten where ``augment.neutralise`` applies."""
    return [
        LabeledPrompt(r.id, neutralise(r.id, r.group, r.prompt), r.task_type, r.complexity, r.group)
        for r in rows
    ]


def select_training_task_rows(
    rows: list[LabeledPrompt], cap: int | None, rng: random.Random
) -> list[LabeledPrompt]:
    """The shipped recipe's task rows: the training split, at most ``cap`` per task type and
    source, dataset boilerplate rewritten in about half of them."""
    train = [r for r in rows if r.task_type is not None and not is_held_out(r)]
    return neutralised_rows(_cap(train, cap, rng, _type_and_source))


def with_added_labels(
    dataset_rows: list[LabeledPrompt], added: list[LabeledPrompt]
) -> list[LabeledPrompt]:
    """The built-in rows and a team's labelled rows (``--add-labels``: source ``user``); where
    both hold the same prompt (case and spacing aside), the team's label wins."""
    mine = {normalised_prompt(r.prompt) for r in added}
    kept = [r for r in dataset_rows if normalised_prompt(r.prompt) not in mine]
    return kept + added


def select_rows(config: BuildConfig, inputs: dict[str, str]) -> TrainingRows:
    """Read the data and split it; records every input file's sha256 in ``inputs``."""
    rng = random.Random(SEED)
    dataset_rows: list[LabeledPrompt] = []
    if config.prompts_dir is not None:
        dataset_rows = load_dataset_prompts(config.prompts_dir, mmlu_file=config.mmlu_file)
        for path in sorted(config.prompts_dir.glob("*.jsonl")):
            inputs[f"prompts/{path.name}"] = sha256_file(path)
        if config.mmlu_file is not None:
            inputs[f"mmlu_questions/{config.mmlu_file.name}"] = sha256_file(config.mmlu_file)
    if config.labels_file is not None:
        user_rows = read_label_file(config.labels_file)
        inputs[f"labels/{config.labels_file.name}"] = sha256_file(config.labels_file)
        task_rows_all = user_rows
        complexity_rows_all = [r for r in user_rows if r.complexity is not None] or [
            r for r in dataset_rows if r.complexity is not None
        ]
    else:
        if config.added_labels_file is not None:
            dataset_rows = with_added_labels(
                dataset_rows, read_label_file(config.added_labels_file)
            )
            name = config.added_labels_file.name
            inputs[f"added_labels/{name}"] = sha256_file(config.added_labels_file)
        task_rows_all = [r for r in dataset_rows if r.task_type is not None]
        complexity_rows_all = [r for r in dataset_rows if r.complexity is not None]
    if not task_rows_all:
        raise ValueError("no task-type training data: give --labels or a prompts directory")
    if not complexity_rows_all:
        raise ValueError(
            "no complexity training data: give complexity in --labels or a prompts directory"
        )
    outcomes: list[OutcomeRecord] = []
    if config.outcomes_file is not None:
        outcomes = read_outcome_file(config.outcomes_file)
        inputs[f"outcomes/{config.outcomes_file.name}"] = sha256_file(config.outcomes_file)
        if config.outcome_limit is not None:
            outcomes = sorted(outcomes, key=lambda r: prompt_key(r.id))[: config.outcome_limit]
            outcomes.sort(key=lambda r: r.id)
    outcome_train, outcome_eval, trained_ids = split_for_training(
        outcomes, OUTCOME_HELD_OUT_PERCENT, 1
    )
    if config.team_outcomes_file is not None:
        team = read_team_outcomes(config.team_outcomes_file)
        inputs[f"team_outcomes/{config.team_outcomes_file.name}"] = sha256_file(
            config.team_outcomes_file
        )
        config.log(f"team outcomes: {team.counts()} (weight {config.team_weight})")
        if not 0 <= config.team_held_out_percent <= 90:
            raise ValueError(
                f"team held-out percent must be 0 to 90, got {config.team_held_out_percent}"
            )
        team_train, team_eval, team_ids = split_for_training(
            team.training, config.team_held_out_percent, config.team_weight
        )
        outcome_train += team_train
        outcome_eval += team_eval
        trained_ids += team_ids

    weighted = config.labels_file is None
    if weighted:
        train_rows = select_training_task_rows(task_rows_all, config.train_cap, rng)
    else:  # a team's own rows, as they are: per-type cap only, no rewriting
        train_rows = _cap([r for r in task_rows_all if not is_held_out(r)], config.train_cap, rng)
    eval_rows = _cap([r for r in task_rows_all if is_held_out(r)], config.eval_cap, rng)
    if weighted or any(r.complexity is not None for r in task_rows_all):
        # Complexity learns from the task head's rows that have a target, plus the rows with a
        # complexity target but no task type (arena-hard), capped like a task type.
        untyped = [r for r in complexity_rows_all if r.task_type is None]
        cx_train = [r for r in train_rows if r.complexity is not None] + _cap(
            [r for r in untyped if not is_held_out(r)], config.train_cap, rng
        )
        cx_eval = [r for r in eval_rows if r.complexity is not None] + _cap(
            [r for r in untyped if is_held_out(r)], config.eval_cap, rng
        )
    else:  # user labels without complexity: the built-in datasets teach complexity
        cx_train = _cap(
            [r for r in complexity_rows_all if not is_held_out(r)], config.train_cap, rng
        )
        cx_eval = _cap([r for r in complexity_rows_all if is_held_out(r)], config.eval_cap, rng)
    return TrainingRows(
        task_train=train_rows,
        task_eval=eval_rows,
        complexity_train=cx_train,
        complexity_eval=cx_eval,
        outcome_train=outcome_train,
        outcome_eval=outcome_eval,
        weighted=weighted,
        inputs=inputs,
        trained_outcome_ids=trained_ids,
    )


def embed_rows(rows: TrainingRows, embedder: Embedder, log: Callable[[str], None]) -> EmbeddedRows:
    def embed(items: Sequence[LabeledPrompt | OutcomeRecord]) -> Embedded:
        prompts = [r.prompt for r in items]
        bags = bag_of_tokens(embedder.token_ids(prompts))
        if not items:
            return Embedded(
                np.zeros((0, HIDDEN), np.float32),
                np.zeros((0, 1), np.float32),
                np.zeros((0, END_STATES), np.float32),
                bags,
            )
        return Embedded(*embedder.embed(prompts, log), bags)

    return EmbeddedRows(
        task_train=embed(rows.task_train),
        task_eval=embed(rows.task_eval),
        complexity_train=embed(rows.complexity_train),
        complexity_eval=embed(rows.complexity_eval),
        outcome_train=embed(rows.outcome_train),
        outcome_eval=embed(rows.outcome_eval),
    )


def transfer_features(task: TaskHead, complexity: object, embedded: Embedded) -> TransferFeatures:
    """The stacker's inputs for some rows, from the fitted task and complexity heads."""
    cx = np.clip(complexity.predict(embedded.x), 0.0, 1.0)  # type: ignore[attr-defined]
    return TransferFeatures(
        embedded.log_n, cx, task.probabilities(embedded.x, embedded.bags, embedded.ends)
    )


def fit_heads(
    rows: TrainingRows, embedded: EmbeddedRows, log: Callable[[str], None]
) -> FittedHeads:
    from sklearn.linear_model import Ridge

    classes = len(TASK_TYPE_NAMES)
    y_train = np.array([TASK_TYPE_NAMES.index(r.task_type) for r in rows.task_train])
    task = fit_task_head(
        embedded.task_train.x,
        y_train,
        classes,
        log,
        balanced_weights(rows.task_train) if rows.weighted else None,
        bags=embedded.task_train.bags,
        ends=embedded.task_train.ends,
    )
    cx_model = Ridge(alpha=1.0).fit(
        embedded.complexity_train.x, np.array([r.complexity for r in rows.complexity_train])
    )
    escalation: EscalationFit | None = None
    if rows.outcome_train:
        out = embedded.outcome_train
        escalation = fit_escalation(
            out.x,
            out.log_n,
            np.array([o.local_ok for o in rows.outcome_train]),
            np.array([o.frontier_ok for o in rows.outcome_train]),
            [outcome_group(o) for o in rows.outcome_train],
            transfer_features(task, cx_model, out),
            embedded.task_train.x,
            log,
            team_rows_mask(rows.outcome_train),
        )
    if escalation is not None:
        esc_args: dict[str, object] = {
            **escalation.linear(),
            "centroids": escalation.centroids,
            "sim_low": escalation.sim_low,
            "sim_high": escalation.sim_high,
            "outcome_mix": 1.0,
        }
    else:  # no outcome data: the escalation output is the complexity score
        esc_args = {
            "outcome_weights": np.zeros(HIDDEN),
            "outcome_length_weight": 0.0,
            "outcome_bias": 0.0,
            "transfer_length_weight": 0.0,
            "transfer_complexity_weight": 0.0,
            "transfer_task_weights": np.zeros(classes),
            "escalation_bias": 0.0,
            "centroids": np.zeros((1, HIDDEN)),
            "sim_low": 1.5,
            "sim_high": 2.0,
            "outcome_mix": 0.0,
        }
    heads = Heads(
        task_weights=task.weights,
        task_bias=task.bias,
        temperature=task.temperature,
        complexity_weights=np.asarray(cx_model.coef_),
        complexity_bias=float(cx_model.intercept_),
        token_weights=task.token_weights,
        task_end_weights=task.end_weights,
        **esc_args,  # type: ignore[arg-type]
    )
    return FittedHeads(heads, task, cx_model, escalation)


def write_model(
    config: BuildConfig,
    encoder: onnx.ModelProto,
    heads: Heads,
    files: EncoderFiles,
    inputs: dict[str, str],
    report: dict[str, object],
    fine_tuned: dict[str, object] | None = None,
) -> dict[str, object]:
    """Write the model directory; returns the manifest."""
    merged = merge_encoder_and_heads(encoder, build_heads_graph(heads))
    config.out.mkdir(parents=True, exist_ok=True)
    model_path = config.out / MODEL_FILE
    onnx.save(merged, model_path)
    shutil.copyfile(files.tokenizer, config.out / TOKENIZER_FILE)
    hashes = {
        MODEL_FILE: sha256_file(model_path),
        TOKENIZER_FILE: sha256_file(config.out / TOKENIZER_FILE),
    }
    manifest: dict[str, object] = {
        "name": (
            MODEL_NAME
            if config.labels_file is None and config.added_labels_file is None
            else CUSTOM_MODEL_NAME
        ),
        "version": hashes[MODEL_FILE][:12],
        "recipe_version": RECIPE_VERSION,
        "task_types": list(TASK_TYPE_NAMES),
        "cut_points": list(DEFAULT_CUT_POINTS),
        "max_tokens": MAX_TOKENS,
        "head_tokens": HEAD_TOKENS,
        "files": hashes,
        "inputs": inputs,
        "config": {
            "seed": SEED,
            "held_out_percent": HELD_OUT_PERCENT,
            "outcome_held_out_percent": OUTCOME_HELD_OUT_PERCENT,
            **(
                {"team_held_out_percent": config.team_held_out_percent}
                if config.team_outcomes_file is not None
                else {}
            ),
            "train_cap": config.train_cap,
            "eval_cap": config.eval_cap,
            "outcome_limit": config.outcome_limit,
            "fine_tune": fine_tuned,
        },
        "metrics": report,
    }
    (config.out / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    config.log(
        f"wrote {config.out} (model {manifest['version']}, "
        f"{model_path.stat().st_size / 1e6:.1f} MB)"
    )
    return manifest


def fine_tuned_encoder(
    config: BuildConfig, rows: TrainingRows, files: EncoderFiles, workdir: Path
) -> tuple[EncoderFiles, dict[str, object] | None]:
    """The encoder files the build embeds with: the published weights, or (``config.fine_tune``)
    those with the last layer trained on the task rows (fine_tune.py), written under
    ``workdir`` and cached in ``config.cache_dir`` by everything they depend on; with what the
    manifest records of the fine-tuning."""
    recipe = config.fine_tune
    if recipe is None or recipe.epochs <= 0 or not rows.task_train:
        return files, None
    from safetensors.numpy import load_file, save_file

    tokenizer = PromptTokenizer(files.tokenizer, MAX_TOKENS, HEAD_TOKENS)
    token_ids = [ids for ids, _ in tokenizer.encode_each([r.prompt for r in rows.task_train])]
    labels = np.array([TASK_TYPE_NAMES.index(r.task_type) for r in rows.task_train])
    weights = balanced_weights(rows.task_train) if rows.weighted else None
    key = recipe_key(recipe, sha256_file(files.weights), token_ids, labels, weights, config.threads)
    cache = config.cache_dir
    cached = cache / f"tuned-encoder-{key[:16]}.safetensors" if cache is not None else None
    tuned_path = workdir / "tuned-encoder.safetensors"
    if cached is not None and cached.is_file():
        config.log(f"fine-tune: cached {cached.name}")
        shutil.copyfile(cached, tuned_path)
    else:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(config.threads)
        try:
            published = load_file(str(files.weights))
            config.log(f"fine-tune: the last layer on {len(token_ids)} task rows ...")
            lower = lower_states(published, token_ids, config.log)
            tuned = fine_tune(
                published, lower, labels, len(TASK_TYPE_NAMES), weights, recipe, config.log
            )
        finally:
            torch.set_num_threads(threads)
        save_file(tuned, str(tuned_path))
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tuned_path, cached)
    record: dict[str, object] = {
        **asdict(recipe),
        "rows": len(token_ids),
        "layer": TUNED_LAYER,
        "key": key,
    }
    return EncoderFiles(tuned_path, files.tokenizer), record


def make_embedder(
    files: EncoderFiles, workdir: Path, threads: int, cache_dir: Path | None
) -> tuple[onnx.ModelProto, Embedder]:
    """The int8 encoder graph and an embedder running it (saved under ``workdir``)."""
    encoder = build_encoder_graph(files.weights, int8=True)
    encoder_path = workdir / "encoder.onnx"
    onnx.save(encoder, encoder_path)
    embedder = Embedder(
        encoder_path,
        files.tokenizer,
        max_tokens=MAX_TOKENS,
        head_tokens=HEAD_TOKENS,
        threads=threads,
        cache_dir=cache_dir,
        encoder_sha=sha256_file(encoder_path),
    )
    return encoder, embedder


def build_model(config: BuildConfig) -> BuildResult:
    log = config.log
    files = locate_encoder_files()
    inputs: dict[str, str] = {
        "encoder/model.safetensors": sha256_file(files.weights),
        "encoder/tokenizer.json": sha256_file(files.tokenizer),
    }
    rows = select_rows(config, inputs)
    log(
        f"task rows: {len(rows.task_train)} train / {len(rows.task_eval)} held out; complexity "
        f"rows: {len(rows.complexity_train)} / {len(rows.complexity_eval)}; outcome rows: "
        f"{len(rows.outcome_train)} / {len(rows.outcome_eval)}"
    )
    with tempfile.TemporaryDirectory(prefix="switchyard-classifier-") as tmp:
        tuned, fine_tuned = fine_tuned_encoder(config, rows, files, Path(tmp))
        encoder, embedder = make_embedder(tuned, Path(tmp), config.threads, config.cache_dir)
        log("embedding ...")
        embedded = embed_rows(rows, embedder, log)
        fitted = fit_heads(rows, embedded, log)
        report = evaluate(fitted, rows, embedded)
        write_model(config, encoder, fitted.heads, files, inputs, report, fine_tuned)
        record_trained_outcomes(config.out, rows.trained_outcome_ids, OUTCOME_HELD_OUT_PERCENT)
    return BuildResult(
        config.out,
        fitted.heads,
        report,
        {
            "task": fitted.task.model,
            "complexity": fitted.complexity,
            "escalation": fitted.escalation,
            "x_eval": embedded.task_eval.x,
        },
        encoder,
    )
