"""The encoder graph's outputs: the prompt's two ends are what the model card says they are
(at the last layer and the fourth), a prompt's outputs do not depend on the padding of the
batch it runs in, and the fused nodes of the lean graph compute what ONNX's spelled-out forms
compute, bit for bit."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from switchyard.classifier.model import PromptTokenizer
from switchyard.training.build import HEAD_TOKENS, MAX_TOKENS
from switchyard.training.encoder import (
    END_LAYERS,
    END_STATES,
    END_TOKENS,
    HIDDEN,
    IR_VERSION,
    MS_DOMAIN,
    MS_OPSET,
    OPSET,
    build_encoder_graph,
    expose_layer_states,
    layer_states,
    locate_encoder_files,
)

PROMPTS = [
    "hi",
    "What is 2 + 2?",
    "Here is a long pasted document. " * 12 + "Summarise it in one line.",
    "The council met again. " * 80 + "Which people are named above?",  # over the window
]


@pytest.fixture(scope="module")
def encoder() -> tuple[ort.InferenceSession, list[str], PromptTokenizer]:
    files = locate_encoder_files()
    model = build_encoder_graph(files.weights, int8=True)
    # the mean pooling reads the last layer's states
    reduce = next(n for n in model.graph.node if n.op_type == "ReduceSum")
    pooled = next(n for n in model.graph.node if reduce.input[0] in n.output).input[0]
    assert pooled == layer_states(6)
    layers = expose_layer_states(model, END_LAYERS)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session, layers, PromptTokenizer(files.tokenizer, MAX_TOKENS, HEAD_TOKENS)


def test_end_states_are_the_unit_means_of_the_first_and_last_tokens_inside_cls_and_sep(
    encoder: tuple[ort.InferenceSession, list[str], PromptTokenizer],
) -> None:
    session, layers, tokenizer = encoder
    ids, mask, _ = tokenizer.encode(PROMPTS)
    ends, *states = session.run(["end_states", *layers], {"input_ids": ids, "attention_mask": mask})
    assert ends.shape == (len(PROMPTS), END_STATES) == (len(PROMPTS), 4 * HIDDEN)
    for row in range(len(PROMPTS)):
        length = int(mask[row].sum())
        expected = []
        for hidden in states:  # END_LAYERS' order: the last layer, then the fourth
            body = hidden[row, 1 : length - 1]  # inside [CLS] ... [SEP], no padding
            for part in (body[:END_TOKENS].mean(axis=0), body[-END_TOKENS:].mean(axis=0)):
                expected.append(part / np.linalg.norm(part))
        np.testing.assert_allclose(ends[row], np.concatenate(expected), atol=1e-5)
    # a short prompt's two ends overlap, a long one's do not
    assert np.allclose(ends[0, :HIDDEN], ends[0, HIDDEN : 2 * HIDDEN], atol=1e-5)
    assert not np.allclose(ends[3, :HIDDEN], ends[3, HIDDEN : 2 * HIDDEN], atol=1e-2)


def test_a_prompt_padded_in_a_batch_gives_what_it_gives_alone(
    encoder: tuple[ort.InferenceSession, list[str], PromptTokenizer],
) -> None:
    session, _, tokenizer = encoder
    ids, mask, _ = tokenizer.encode(PROMPTS)
    outputs = ["embedding", "token_count", "end_states"]
    batched = session.run(outputs, {"input_ids": ids, "attention_mask": mask})
    for row, prompt in enumerate(PROMPTS):
        one, one_mask, _ = tokenizer.encode([prompt])
        # a batch of two: onnxruntime's batch-of-one kernels differ in the last bits
        alone = session.run(
            outputs,
            {"input_ids": np.vstack([one, one]), "attention_mask": np.vstack([one_mask] * 2)},
        )
        for got, want in zip(batched, alone, strict=True):
            np.testing.assert_allclose(got[row], want[0], atol=1e-5)


def _run(
    nodes: list[onnx.NodeProto], inputs: dict[str, np.ndarray], output: str, dtype: int
) -> np.ndarray:
    """One small graph of ``nodes`` run by onnxruntime as the encoder is (opsets as its)."""
    graph = helper.make_graph(
        nodes,
        "check",
        [
            helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape
            )
            for name, value in inputs.items()
        ],
        [helper.make_tensor_value_info(output, dtype, None)],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, MS_OPSET)],
    )
    model.ir_version = IR_VERSION
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([output], inputs)[0]


def test_the_fused_gelu_is_onnx_exact_gelu_bit_for_bit() -> None:
    # The shipped encoder's BiasGelu nodes stand for x + b -> x / 2 * (1 + erf(x / sqrt 2))
    # spelled in ONNX's own ops; its embeddings (and the evaluation numbers) were measured
    # with the spelled-out form, so an onnxruntime whose BiasGelu rounds differently fails here.
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((37, 1536)) * 3).astype(np.float32)
    x[0, :8] = [0.0, -0.0, 1e-30, -1e-30, 8.0, -8.0, 40.0, -40.0]
    b = rng.standard_normal(1536).astype(np.float32)
    consts = {
        "half": np.array(0.5, np.float32),
        "one": np.array(1.0, np.float32),
        "inv_sqrt2": np.array(1.0 / np.sqrt(2.0), np.float32),
    }
    spelled = _run(
        [
            helper.make_node("Add", ["x", "b"], ["y"]),
            helper.make_node("Mul", ["y", "inv_sqrt2"], ["s"]),
            helper.make_node("Erf", ["s"], ["e"]),
            helper.make_node("Add", ["e", "one"], ["e1"]),
            helper.make_node("Mul", ["y", "half"], ["h"]),
            helper.make_node("Mul", ["h", "e1"], ["out"]),
        ],
        {"x": x, "b": b, **consts},
        "out",
        onnx.TensorProto.FLOAT,
    )
    fused = _run(
        [helper.make_node("BiasGelu", ["x", "b"], ["out"], domain=MS_DOMAIN)],
        {"x": x, "b": b},
        "out",
        onnx.TensorProto.FLOAT,
    )
    np.testing.assert_array_equal(fused, spelled)


def test_quantize_linear_per_row_is_round_half_even_of_x_over_scale_plus_128() -> None:
    # The per-token activation quantisation: one QuantizeLinear along the rows does what
    # Cast(Round(x / scale) + 128) does, ties to even included.
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((29, 384)) * 2).astype(np.float32)
    scale = (np.abs(x).max(axis=1) / 127.0).astype(np.float32)
    x[0, :6] = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5], np.float32) * scale[0]
    x[1] = 0.0
    scale[1] = np.float32(1e-8) / np.float32(127.0)
    zero = np.full(29, 128, np.uint8)
    spelled = _run(
        [
            helper.make_node("Unsqueeze", ["scale", "axes"], ["col"]),
            helper.make_node("Div", ["x", "col"], ["d"]),
            helper.make_node("Round", ["d"], ["r"]),
            helper.make_node("Add", ["r", "shift"], ["s"]),
            helper.make_node("Cast", ["s"], ["out"], to=onnx.TensorProto.UINT8),
        ],
        {
            "x": x,
            "scale": scale,
            "axes": np.array([-1], np.int64),
            "shift": np.array(128.0, np.float32),
        },
        "out",
        onnx.TensorProto.UINT8,
    )
    fused = _run(
        [helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["out"], axis=0)],
        {"x": x, "scale": scale, "zero": zero},
        "out",
        onnx.TensorProto.UINT8,
    )
    assert spelled[0, :6].tolist() == [128, 130, 130, 128, 126, 126]  # ties to even
    np.testing.assert_array_equal(fused, spelled)
