"""New request formats made from real dataset rows (classifier v2).

Two formats the datasets lack are built from their own text, with a short ask written by the
project (the asks are ours and listed here; the text they wrap is the dataset's):

- ``fix_code``: DebugBench's buggy solutions *without* the problem statement and the dataset's
  fixed opening: just the code and a one-line complaint, the way people paste a function that
  does not work (code review);
- ``doc_<task>``: a long real article from P3's CNN/DailyMail and XSum rows, pasted whole with
  an ask before or after it, where the ask decides the task type (summarise it, pull names out
  of it, label its topic or tone, write a poem from it). The same kind of document then appears
  under four task types, so the head has to read the ask, not the document.

A derived row keeps its original row's split key (``split_key``), so a derived row is held out
exactly when the row it came from is, and nothing leaks across the held-out split. Every
article row and about half of the DebugBench rows (by a hash of the row id) get a derived twin.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

from switchyard.training.records import LabeledPrompt

__all__ = ["DERIVED_PREFIX", "derived_rows", "split_key"]

DERIVED_PREFIX = "derived/"

_CODE_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)
_FIX_ASKS = (
    "this doesn't work, can you fix it?\n\n{code}",
    "{code}\n\nwhat's wrong with this code?",
    "Fix the bug:\n\n{code}",
    "my {lang} solution fails on some inputs, find the bug\n\n{code}",
    "{code}\n\nthis gives the wrong answer sometimes. why, and how do I fix it?",
    "Can you debug this {lang} function for me?\n{code}",
)
_DOC_ASKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "summarization",
        (
            "Summarize this article.",
            "tl;dr please",
            "what are the key points of this?",
            "Give me a three-sentence summary of the text.",
        ),
    ),
    (
        "extraction",
        (
            "List every person and organisation named in this text.",
            "pull out all the dates and numbers mentioned, as a list",
            "Which places are mentioned in the article? Just the names.",
            "extract each quote and who said it",
        ),
    ),
    (
        "classification",
        (
            "Is this article about politics, sports, business, science or entertainment? One word.",
            "is the tone of this positive, negative or neutral",
            "Classify this text as news, opinion or advertisement.",
        ),
    ),
    (
        "creative_writing",
        (
            "Write a short poem inspired by this story.",
            "turn this into a short fictional scene from the point of view of someone in it",
            "write a funny limerick about this news",
        ),
    ),
)
_DOC_COMPLEXITY = {
    "summarization": 0.25,
    "extraction": 0.25,
    "classification": 0.15,
    "creative_writing": 0.35,
}
# P3 templates whose prompt is (mostly) one long article, and the fixed text around it.
_DOC_TEMPLATES = {
    "p3/cnn_dailymail_3_0_0_sum_in_brief": re.compile(r"\ASum the following article in brief: "),
    "p3/xsum_DOC_tldr": re.compile(r"\n*TL;DR:?\s*\Z|\n*tl;dr:?\s*\Z", re.IGNORECASE),
}


def _pick(key: str, salt: str, n: int) -> int:
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % n


def split_key(row: LabeledPrompt) -> str:
    """The key the held-out split hashes: the template for templated authored rows, the original
    row's id for derived rows, the row's id otherwise."""
    if row.id.startswith(DERIVED_PREFIX):
        return row.id.split("#", 1)[1]
    if row.group.startswith("authored/"):
        return row.group
    return row.id


def _fix_code(row: LabeledPrompt) -> LabeledPrompt | None:
    match = _CODE_BLOCK.search(row.prompt)
    if not match:
        return None
    lang = match.group(1) or "code"
    code = f"```{match.group(1)}\n{match.group(2).rstrip()}\n```"
    ask = _FIX_ASKS[_pick(row.id, "fix-ask", len(_FIX_ASKS))]
    return LabeledPrompt(
        f"{DERIVED_PREFIX}fix_code#{row.id}",
        ask.format(code=code, lang=lang),
        "code_review",
        row.complexity,
        f"{DERIVED_PREFIX}fix_code",
    )


def _doc_ask(row: LabeledPrompt) -> LabeledPrompt | None:
    pattern = _DOC_TEMPLATES[row.group]
    document = pattern.sub("", row.prompt).strip()
    if len(document) < 400:
        return None
    task, asks = _DOC_ASKS[_pick(row.id, "doc-task", len(_DOC_ASKS))]
    ask = asks[_pick(row.id, "doc-ask", len(asks))]
    text = f"{document}\n\n{ask}" if _pick(row.id, "doc-side", 2) else f"{ask}\n\n{document}"
    return LabeledPrompt(
        f"{DERIVED_PREFIX}doc_{task}#{row.id}",
        text,
        task,
        _DOC_COMPLEXITY[task],
        f"{DERIVED_PREFIX}doc_{task}",
    )


def derived_rows(rows: Iterable[LabeledPrompt]) -> Iterator[LabeledPrompt]:
    """The derived twins of the P3 article rows and of about half of the DebugBench rows."""
    for row in rows:
        made = None
        if row.group == "debugbench" and not _pick(row.id, "derive", 2):
            made = _fix_code(row)
        elif row.group in _DOC_TEMPLATES:
            made = _doc_ask(row)
        if made is not None:
            yield made
