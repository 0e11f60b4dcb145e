"""Bag-of-wordpieces features of the task head: which words the prompt uses, and where.

Mean-pooled sentence embeddings mostly say what a prompt is *about*; the task is often said by
a few words at either end ("write a function ...", "... fix it", "summarise this:"). Next to the
embedding the task head reads three bags of the prompt's wordpieces (special tokens left out),
each as term frequencies (counts / tokens in the segment, times ``TOKEN_SCALE``): the whole
window, its first ``EDGE_TOKENS`` and its last ``EDGE_TOKENS`` tokens. The graph computes the
same from ``input_ids`` (``heads.build_heads_graph``), so the token table costs a Gather, no
extra encoder run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["EDGE_TOKENS", "SEGMENTS", "TOKEN_SCALE", "VOCAB", "bag_of_tokens"]

VOCAB = 30522  # all-MiniLM-L6-v2's WordPiece vocabulary
EDGE_TOKENS = 12
SEGMENTS = 3  # whole window, first EDGE_TOKENS, last EDGE_TOKENS
TOKEN_SCALE = 3.0


def bag_of_tokens(token_ids: Sequence[Sequence[int]]) -> object:
    """A scipy CSR matrix [prompts, SEGMENTS * VOCAB] of the scaled term frequencies; each row
    from one prompt's token ids as the model reads them ([CLS] first, [SEP] last)."""
    import scipy.sparse as sp

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for i, ids in enumerate(token_ids):
        body = np.asarray(ids[1:-1], dtype=np.int64)
        if not len(body):
            continue
        for segment, tokens in enumerate((body, body[:EDGE_TOKENS], body[-EDGE_TOKENS:])):
            unique, counts = np.unique(tokens, return_counts=True)
            rows.extend([i] * len(unique))
            cols.extend((unique + segment * VOCAB).tolist())
            vals.extend((counts / len(tokens) * TOKEN_SCALE).tolist())
    return sp.csr_matrix(
        (np.asarray(vals, np.float64), (rows, cols)), shape=(len(token_ids), SEGMENTS * VOCAB)
    )
