"""The encoder graph's outputs: the prompt's two ends are what the model card says they are
(at the last layer and the fourth), and a prompt's outputs do not depend on the padding of the
batch it runs in."""

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
    build_encoder_graph,
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
    # expose each layer's output: layer L's is the (2L)-th LayerNormalization after the
    # embeddings' (each layer has two); the last is what the mean pooling reads
    norms = [n.output[0] for n in model.graph.node if n.op_type == "LayerNormalization"]
    reduce = next(n for n in model.graph.node if n.op_type == "ReduceSum")
    pooled = next(n for n in model.graph.node if reduce.input[0] in n.output).input[0]
    assert norms[-1] == pooled
    layers = [norms[2 * layer] for layer in END_LAYERS]
    for name in layers:
        model.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
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
        for layer_states in states:  # END_LAYERS' order: the last layer, then the fourth
            body = layer_states[row, 1 : length - 1]  # inside [CLS] ... [SEP], no padding
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
