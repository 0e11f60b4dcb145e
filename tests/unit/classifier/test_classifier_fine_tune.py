"""Fine-tuning the encoder's last layer (fine_tune.py): the torch encoder it trains is the fp32
ONNX graph the build exports, it trains that layer and nothing else, and it repeats exactly."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from safetensors.numpy import load_file

from switchyard.classifier.model import PromptTokenizer
from switchyard.training.build import HEAD_TOKENS, MAX_TOKENS
from switchyard.training.encoder import build_encoder_graph, locate_encoder_files
from switchyard.training.fine_tune import (
    FineTuneRecipe,
    features,
    fine_tune,
    lower_states,
    torch_available,
)

pytestmark = pytest.mark.skipif(not torch_available(), reason="torch is not installed")

PROMPTS = [
    "",  # [CLS] [SEP] only: no body, zero ends
    "hi",
    "What is 2 + 2?",
    "Here is a long pasted document. " * 12 + "Summarise it in one line.",
    "The council met again. " * 80 + "Which people are named above?",  # over the window
]

# Two task types in words of their own, for a few steps of training.
ROWS = [(f"What is {a} plus {a + 3}? Show the sum.", 0) for a in range(9)] + [
    (f"Write a short poem about the {thing}.", 1)
    for thing in ("sea", "moon", "rain", "city", "forest", "winter", "river", "night", "wind")
]


@pytest.fixture(scope="module")
def published() -> dict[str, np.ndarray]:
    return load_file(str(locate_encoder_files().weights))


@pytest.fixture(scope="module")
def tokenizer() -> PromptTokenizer:
    return PromptTokenizer(locate_encoder_files().tokenizer, MAX_TOKENS, HEAD_TOKENS)


def test_the_torch_encoder_computes_the_fp32_graph(
    published: dict[str, np.ndarray], tokenizer: PromptTokenizer
) -> None:
    graph = build_encoder_graph(locate_encoder_files().weights, int8=False)
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    token_ids = [ids for ids, _ in tokenizer.encode_each(PROMPTS)]
    embedding, ends = features(published, lower_states(published, token_ids, half=False))
    for i, ids in enumerate(token_ids):
        row = np.array([ids])
        want_embedding, _, want_ends = session.run(
            ["embedding", "token_count", "end_states"],
            {"input_ids": row, "attention_mask": np.ones_like(row)},
        )
        # (tanh's GELU in place of erf's differs by 4e-4, a LayerNorm epsilon of 1e-5 by 1e-4)
        np.testing.assert_allclose(embedding[i], want_embedding[0], atol=1e-5)
        np.testing.assert_allclose(ends[i], want_ends[0], atol=1e-5)
    assert not ends[0].any()  # the empty prompt's ends


def test_fine_tuning_trains_the_last_layer_alone_and_repeats_exactly(
    published: dict[str, np.ndarray], tokenizer: PromptTokenizer
) -> None:
    token_ids = [ids for ids, _ in tokenizer.encode_each([p for p, _ in ROWS])]
    labels = np.array([y for _, y in ROWS])
    lower = lower_states(published, token_ids)
    recipe = FineTuneRecipe(epochs=3, layer_lr=1e-4, batch=4)
    lines: list[str] = []
    tuned = fine_tune(published, lower, labels, 2, None, recipe, lines.append)
    again = fine_tune(published, lower, labels, 2, None, recipe)
    assert set(tuned) == set(published)
    changed = set()
    for name, value in published.items():
        np.testing.assert_array_equal(tuned[name], again[name], err_msg=name)
        if not np.array_equal(tuned[name], value):
            changed.add(name)
            assert tuned[name].dtype == np.float32 and tuned[name].shape == value.shape
    # every tensor of the sixth layer moved; nothing else did
    assert changed == {name for name in published if name.startswith("encoder.layer.5.")}
    assert len(lines) == 3 and all("weighted loss" in line for line in lines)
    # the tuned layer changes what the heads read, and only through the last layer's outputs
    before, before_ends = features(published, lower)
    after, after_ends = features(tuned, lower)
    assert not np.allclose(before, after, atol=1e-4)
    np.testing.assert_array_equal(before_ends[:, 768:], after_ends[:, 768:])  # the fourth layer's
