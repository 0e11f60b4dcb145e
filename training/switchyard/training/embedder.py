"""Embedding training prompts with the int8 encoder graph the service runs, cached on disk:
each prompt's embedding, token count and two ends (the encoder's three outputs).

Prompts are grouped by token length and embedded without padding, so an embedding does not
depend on the other prompts of its batch and builds are byte-for-byte repeatable. A lone
prompt of its length is run twice in one batch: onnxruntime takes another kernel path for a
batch of one, whose last bits differ (measured: batches of 2 to 64 give identical bits, a
batch of 1 does not), which would make a warm-cache build differ from a cold one. The cache
(``--cache-dir``) is keyed by the encoder graph's sha256 and the window (tokens, head tokens),
so a changed encoder or window never reads stale vectors.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from switchyard.classifier.model import PromptTokenizer
from switchyard.training.encoder import END_STATES

__all__ = ["Embedder", "prompt_key", "run_by_length"]

# Prompts per model run while embedding (all of one token length).
CHUNK = 64


def prompt_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_by_length(
    session: Any,
    tokenizer: PromptTokenizer,
    todo: Sequence[tuple[str, str]],
    outputs: Sequence[str],
    log: Callable[[str], None] = lambda _: None,
) -> Iterator[tuple[str, list[np.ndarray]]]:
    """Run (key, prompt) pairs through an encoder session in batches of prompts of one token
    length (no padding; a lone prompt twice, see the module docstring): each key with its row of
    every output named in ``outputs``, shortest prompts first."""
    by_length: dict[int, list[tuple[str, np.ndarray]]] = defaultdict(list)
    for key, prompt in todo:
        ids, _, _ = tokenizer.encode([prompt])
        by_length[ids.shape[1]].append((key, ids[0]))
    done = 0
    for length in sorted(by_length):
        items = by_length[length]
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            ids = np.stack([row for _, row in chunk] * (2 if len(chunk) == 1 else 1))
            results = session.run(
                list(outputs), {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            )
            for row, (key, _) in enumerate(chunk):
                yield key, [result[row] for result in results]
        done += len(items)
        if len(todo) > 2000 and (length % 16 == 0):
            log(f"  embedded {done}/{len(todo)}")


class Embedder:
    """Embeds prompts with an encoder graph; rows grouped by token length, no padding."""

    def __init__(
        self,
        encoder_path: Path,
        tokenizer_file: Path,
        *,
        max_tokens: int,
        head_tokens: int | None,
        threads: int,
        cache_dir: Path | None,
        encoder_sha: str,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(encoder_path), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = PromptTokenizer(tokenizer_file, max_tokens, head_tokens)
        self._cache: dict[str, tuple[np.ndarray, float, np.ndarray]] = {}
        window = f"w{max_tokens}h{head_tokens or 0}b2e"
        self._cache_file = (
            cache_dir / f"embeddings-{encoder_sha[:16]}-{window}.npz" if cache_dir else None
        )
        if self._cache_file and self._cache_file.is_file():
            data = np.load(self._cache_file)
            for key, vec, count, ends in zip(
                data["keys"], data["vectors"], data["counts"], data["ends"], strict=True
            ):
                self._cache[str(key)] = (vec, float(count), ends)

    def embed(
        self, prompts: Sequence[str], log: Callable[[str], None] = lambda _: None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(embeddings [n, hidden], token counts [n, 1], ends [n, END_STATES]) for the prompts,
        in order."""
        keys = [prompt_key(p) for p in prompts]
        todo = sorted(
            {k: p for k, p in zip(keys, prompts, strict=True) if k not in self._cache}.items()
        )
        if todo:
            outputs = ("embedding", "token_count", "end_states")
            for key, (vec, count, ends) in run_by_length(
                self._session, self._tokenizer, todo, outputs, log
            ):
                self._cache[key] = (vec, float(count[0]), ends)
            self._save()
        if not keys:
            return (
                np.zeros((0, self.hidden), np.float32),
                np.zeros((0, 1), np.float32),
                np.zeros((0, END_STATES), np.float32),
            )
        vectors = np.stack([self._cache[k][0] for k in keys]).astype(np.float32)
        counts = np.array([[self._cache[k][1]] for k in keys], dtype=np.float32)
        ends = np.stack([self._cache[k][2] for k in keys]).astype(np.float32)
        return vectors, counts, ends

    def token_ids(self, prompts: Sequence[str]) -> list[list[int]]:
        """Each prompt's token ids as the model reads them (cut to the window)."""
        return [ids for ids, _ in self._tokenizer.encode_each(list(prompts))]

    @property
    def hidden(self) -> int:
        shape = self._session.get_outputs()[0].shape
        return int(shape[-1])

    def _save(self) -> None:
        if not self._cache_file:
            return
        self._cache_file.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self._cache)
        tmp = self._cache_file.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            keys=np.array(keys),
            vectors=np.stack([self._cache[k][0] for k in keys]),
            counts=np.array([self._cache[k][1] for k in keys]),
            ends=np.stack([self._cache[k][2] for k in keys]),
        )
        tmp.replace(self._cache_file)
