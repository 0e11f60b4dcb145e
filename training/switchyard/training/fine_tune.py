"""Fine-tuning the encoder's last layer on the task rows, before the heads are fitted.

The shipped recipe (v2.6 on) does not take all-MiniLM-L6-v2 as it comes: its sixth layer is
trained for ``FineTuneRecipe.epochs`` passes over the build's task rows (source-balanced
weights, as the task head's), through a throw-away linear head on what the task head reads
(the mean-pooled embedding and the prompt's two ends at the last and the fourth layer). Layers
1-5 and the embeddings stay frozen, so their output is computed once (``lower_states``) and
each step runs one layer forward and back: about 12 minutes for the shipped rows on 2 cores.
The tuned layer then goes into the int8 encoder graph (``encoder.build_encoder_graph``) like
the original weights, and every head is fitted on the tuned encoder's outputs. The recipe's
numbers were fixed before any result was seen (the usual values for fine-tuning a BERT-class
encoder) and not tuned on the evaluation sets; see the model card's "Fine-tuning the last
layer".

The torch code here is the fp32 graph of ``encoder.py`` spelled in torch, for rows of one token
length (no padding, as the build embeds them); a test checks both agree. torch is needed only
to build a model (``pip install 'switchyard-training[fine-tune]'`` or the suite's set-up, whose
vLLM engine brings the CPU wheel); the classifier service runs the ONNX file alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from switchyard.training.encoder import END_LAYERS, END_TOKENS, HEADS, HIDDEN, LAYERS, LN_EPS

__all__ = [
    "FEATURE_SCALE",
    "TUNED_LAYER",
    "FineTuneRecipe",
    "LowerStates",
    "features",
    "fine_tune",
    "lower_states",
    "recipe_key",
    "torch_available",
]

# The layer trained (1-based; the last) and the layer of END_LAYERS below it, read frozen.
TUNED_LAYER = LAYERS
FROZEN_END_LAYER = min(END_LAYERS)
# The throw-away head reads unit vectors; this scales them so its logits span a useful range at
# the head's learning rate.
FEATURE_SCALE = 4.0
_PREFIX = f"encoder.layer.{TUNED_LAYER - 1}."


@dataclass(frozen=True)
class FineTuneRecipe:
    epochs: int = 2
    layer_lr: float = 3e-5
    head_lr: float = 1e-3
    batch: int = 32
    warmup: float = 0.06  # share of the steps with a linearly rising rate; then linear decay
    weight_decay: float = 0.01
    seed: int = 20240601


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - the suite's set-up installs it
        raise ValueError(
            "fine-tuning the encoder needs torch (pip install 'switchyard-training[fine-tune]', "
            "the CPU wheel will do); or build without it: --fine-tune-epochs 0"
        ) from exc
    return torch


def recipe_key(
    recipe: FineTuneRecipe,
    weights_sha: str,
    token_ids: Sequence[Sequence[int]],
    labels: np.ndarray,
    sample_weight: np.ndarray | None,
    threads: int,
) -> str:
    """sha256 of everything the tuned weights depend on (the build caches them under it)."""
    torch = _torch()
    digest = hashlib.sha256()
    meta = {"recipe": asdict(recipe), "weights": weights_sha, "torch": torch.__version__}
    digest.update(json.dumps({**meta, "threads": threads}, sort_keys=True).encode())
    for row in token_ids:
        digest.update(np.asarray(row, np.int64).tobytes() + b"|")
    digest.update(np.asarray(labels, np.int64).tobytes())
    if sample_weight is not None:
        digest.update(np.asarray(sample_weight, np.float64).tobytes())
    return digest.hexdigest()


# --- the encoder in torch (fp32), for rows of one length -------------------------------------


def _embeddings(w: dict[str, Any], ids: Any) -> Any:
    torch = _torch()
    f = torch.nn.functional
    x = w["embeddings.word_embeddings.weight"][ids]
    x = x + w["embeddings.position_embeddings.weight"][: ids.shape[1]]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    return f.layer_norm(
        x, (HIDDEN,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], LN_EPS
    )


def _layer(w: dict[str, Any], prefix: str, x: Any) -> Any:
    """One BERT layer (``prefix`` = ``encoder.layer.N.``) on [batch, tokens, HIDDEN]."""
    torch = _torch()
    f = torch.nn.functional
    b, t, _ = x.shape

    def dense(y: Any, name: str) -> Any:
        return f.linear(y, w[f"{prefix}{name}.weight"], w[f"{prefix}{name}.bias"])

    def norm(y: Any, name: str) -> Any:
        scale, shift = w[f"{prefix}{name}.weight"], w[f"{prefix}{name}.bias"]
        return f.layer_norm(y, (HIDDEN,), scale, shift, LN_EPS)

    def by_head(y: Any) -> Any:
        return y.view(b, t, HEADS, HIDDEN // HEADS).transpose(1, 2)

    q, k, v = (by_head(dense(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
    context = f.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, HIDDEN)
    x = norm(dense(context, "attention.output.dense") + x, "attention.output.LayerNorm")
    inner = f.gelu(dense(x, "intermediate.dense"))
    return norm(dense(inner, "output.dense") + x, "output.LayerNorm")


def _ends(x: Any) -> Any:
    """[batch, 2, HIDDEN]: unit means of the first and last END_TOKENS tokens inside
    [CLS] ... [SEP] (zero vectors for a prompt with no body), as ``end_states`` reads them."""
    torch = _torch()
    b, t, _ = x.shape
    if t <= 2:
        return torch.zeros(b, 2, HIDDEN, dtype=x.dtype)
    body = x[:, 1 : t - 1]
    pair = torch.stack([body[:, :END_TOKENS].mean(1), body[:, -END_TOKENS:].mean(1)], 1)
    return torch.nn.functional.normalize(pair, dim=-1, eps=1e-12)


def _length_batches(token_ids: Sequence[Sequence[int]], size: int) -> list[list[int]]:
    by_length: dict[int, list[int]] = {}
    for i, row in enumerate(token_ids):
        by_length.setdefault(len(row), []).append(i)
    return [
        idx[start : start + size]
        for _, idx in sorted(by_length.items())
        for start in range(0, len(idx), size)
    ]


@dataclass
class LowerStates:
    """The frozen part's output for each row: the input of the tuned layer ([tokens, HIDDEN],
    fp16 by default) and the two ends at FROZEN_END_LAYER ([2, HIDDEN])."""

    states: list[Any]
    frozen_ends: list[Any]
    token_ids: Sequence[Sequence[int]]


def _tensors(weights: dict[str, np.ndarray]) -> dict[str, Any]:
    torch = _torch()
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}


def lower_states(
    weights: dict[str, np.ndarray],
    token_ids: Sequence[Sequence[int]],
    log: Callable[[str], None] = lambda _: None,
    *,
    half: bool = True,
) -> LowerStates:
    """The frozen layers' outputs for the rows; kept in fp16 unless ``half`` is false (the
    shipped rows' states take 1.3 GB so)."""
    torch = _torch()
    keep = torch.float16 if half else torch.float32
    w = _tensors(weights)
    states: list[Any] = [None] * len(token_ids)
    ends: list[Any] = [None] * len(token_ids)
    batches = _length_batches(token_ids, 64)
    with torch.no_grad():
        for n, batch in enumerate(batches):
            x = _embeddings(w, torch.tensor([list(token_ids[i]) for i in batch]))
            frozen = None
            for layer in range(1, TUNED_LAYER):
                x = _layer(w, f"encoder.layer.{layer - 1}.", x)
                if layer == FROZEN_END_LAYER:
                    frozen = _ends(x)
            assert frozen is not None
            for j, i in enumerate(batch):
                states[i] = x[j].to(keep).clone()
                ends[i] = frozen[j].clone()
            if n % 100 == 0 and len(batches) > 100:
                log(f"  fine-tune: frozen layers {n}/{len(batches)} batches")
    return LowerStates(states, ends, token_ids)


def _head_input(w: dict[str, Any], lower: LowerStates, batch: list[int]) -> Any:
    torch = _torch()
    x = _layer(w, _PREFIX, torch.stack([lower.states[i] for i in batch]).float())
    embedding = torch.nn.functional.normalize(x.mean(1), dim=-1, eps=1e-12)
    frozen = torch.stack([lower.frozen_ends[i] for i in batch]).flatten(1)
    return torch.cat([embedding, _ends(x).flatten(1), frozen], 1)


def features(weights: dict[str, np.ndarray], lower: LowerStates) -> tuple[np.ndarray, np.ndarray]:
    """(embedding [n, HIDDEN], end states [n, 4 * HIDDEN]) in fp32 for the rows of ``lower``
    through ``weights``' last layer: what the int8 graph computes, without its rounding."""
    torch = _torch()
    w = _tensors({k: v for k, v in weights.items() if k.startswith(_PREFIX)})
    out = np.zeros((len(lower.states), 5 * HIDDEN), np.float32)
    with torch.no_grad():
        for batch in _length_batches(lower.token_ids, 64):
            out[batch] = _head_input(w, lower, batch).numpy()
    return out[:, :HIDDEN], out[:, HIDDEN:]


def fine_tune(
    weights: dict[str, np.ndarray],
    lower: LowerStates,
    labels: np.ndarray,
    classes: int,
    sample_weight: np.ndarray | None,
    recipe: FineTuneRecipe,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, np.ndarray]:
    """``weights`` with the last layer trained on the rows of ``lower`` (the rest unchanged)."""
    torch = _torch()
    torch.manual_seed(recipe.seed)
    params = {
        k: torch.nn.Parameter(torch.from_numpy(np.array(v, np.float32)))
        for k, v in weights.items()
        if k.startswith(_PREFIX)
    }
    head = torch.nn.Linear(5 * HIDDEN, classes)
    optimizer = torch.optim.AdamW(
        [
            {
                "params": list(params.values()),
                "lr": recipe.layer_lr,
                "weight_decay": recipe.weight_decay,
            },
            {"params": list(head.parameters()), "lr": recipe.head_lr, "weight_decay": 0.0},
        ]
    )
    batches = _length_batches(lower.token_ids, recipe.batch)
    steps = max(1, recipe.epochs * len(batches))
    warm = max(1.0, recipe.warmup * steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: min(1.0, (k + 1) / warm) * max(0.0, 1.0 - k / steps)
    )
    y = torch.from_numpy(np.asarray(labels, np.int64))
    rw = torch.from_numpy(
        np.ones(len(labels), np.float32)
        if sample_weight is None
        else np.asarray(sample_weight, np.float32)
    )
    rng = np.random.default_rng(recipe.seed)
    for epoch in range(recipe.epochs):
        total = 0.0
        for batch_no in rng.permutation(len(batches)):
            batch = batches[batch_no]
            logits = head(_head_input(params, lower, batch) * FEATURE_SCALE)
            loss = torch.nn.functional.cross_entropy(logits, y[batch], reduction="none")
            loss = (loss * rw[batch]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        mean = total / len(batches)
        log(f"  fine-tune: epoch {epoch + 1}/{recipe.epochs}, weighted loss {mean:.4f}")
    tuned = dict(weights)
    for name, value in params.items():
        tuned[name] = value.detach().numpy().astype(np.float32)
    return tuned
