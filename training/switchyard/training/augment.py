"""Training-time removal of dataset boilerplate, so the task head learns the task, not the layout.

Benchmark prompts carry their dataset's scaffolding: BIG-Bench Hard's ``Options:`` block, MBPP's
``Your code should pass these tests:`` asserts, DebugBench's fixed "supposed to solve this
problem but contains a bug" opening, P3's fixed template sentences, MMLU's one layout of a
multiple-choice question (``A.`` .. ``D.`` lines and a closing ``Answer:``; v2.1 writes its
options the ways people paste them, or drops them, so the subject decides, not the layout).
A head trained on them learns those strings (it called every prompt with an options list
"reasoning", and missed BBH tasks and P3 templates it had not seen). ``neutralise`` rewrites
about half of such rows (chosen by a hash of the row id, so the build stays deterministic) into
a plainer form, the way a person might ask the same thing; the other half keep their original
text. Only training rows are rewritten: the held-out split is scored on the datasets' own text.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["neutralise"]

_OPTIONS = re.compile(r"\n+Options:\n.*\Z", re.DOTALL)
_MBPP_TESTS = re.compile(r"\n+Your code should pass these tests:.*\Z", re.DOTALL)
_DEBUG_OPENING = re.compile(
    r"\AThe following (\w+) code is supposed to solve this problem but contains a bug\. "
    r"Find and fix it\.\s*"
)
_DEBUG_ASKS = (
    "this {lang} solution is failing some test cases, what's wrong with it?\n\n",
    "Can you spot the bug in my {lang} code? Problem:\n\n",
    "my {lang} code gives wrong answers, help me fix it\n\n",
    "Please review this {lang} solution and fix the mistake.\n\n",
)
# P3 templates: their fixed sentence -> plainer ways to ask the same thing.
_P3_REWRITES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (
        re.compile(r"\ARead the following paragraph and extract the answer for the question: "),
        ("Answer from the text below: ", "quick one, using only this passage: ", ""),
    ),
    (
        re.compile(r"\AWhich category best describes the following question: "),
        ("What type of answer does this question want? ", "classify this question: "),
    ),
    (
        re.compile(r"\APick one category for the following text\. "),
        ("Which category is this? ", "label this text. "),
    ),
)


_MMLU_LAYOUT = re.compile(
    r"\A(?P<q>.*?)\nA\. (?P<a>.*)\nB\. (?P<b>.*)\nC\. (?P<c>.*)\nD\. (?P<d>.*)\nAnswer:\s*\Z",
    re.DOTALL,
)
# MMLU's options re-laid (question, then the four options a, b, c, d), as people paste them.
_MMLU_STYLES = (
    "{q}\nA) {a}\nB) {b}\nC) {c}\nD) {d}",
    "{q}\n(a) {a}\n(b) {b}\n(c) {c}\n(d) {d}",
    "{q}\n1. {a}\n2. {b}\n3. {c}\n4. {d}",
    "{q} Options: {a}; {b}; {c}; {d}",
    "Which is correct? {q}\nA: {a}\nB: {b}\nC: {c}\nD: {d}",
    "{q}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nPick the right answer and explain why.",
    "{q}",  # the question alone
    "{q}",
)


def _pick(row_id: str, salt: str, n: int) -> int:
    digest = hashlib.sha256(f"{salt}:{row_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % n


def neutralise(row_id: str, group: str, prompt: str) -> str:
    """The prompt with its dataset's boilerplate rewritten, for about half of the rows it fits."""
    if _pick(row_id, "switchyard-neutralise-v1", 2):
        return prompt
    if group.startswith("bbh/"):
        return _OPTIONS.sub("", prompt).strip() or prompt
    if group == "mbpp":
        return _MBPP_TESTS.sub("", prompt).strip() or prompt
    if group == "debugbench":
        match = _DEBUG_OPENING.match(prompt)
        if match:
            ask = _DEBUG_ASKS[_pick(row_id, "ask", len(_DEBUG_ASKS))]
            return ask.format(lang=match.group(1)) + prompt[match.end() :]
        return prompt
    if group.startswith("mmlu/"):
        match = _MMLU_LAYOUT.match(prompt)
        if match:
            style = _MMLU_STYLES[_pick(row_id, "mmlu", len(_MMLU_STYLES))]
            return style.format(**{k: v.strip() for k, v in match.groupdict().items()})
        return prompt
    if group.startswith("p3/"):
        for pattern, replacements in _P3_REWRITES:
            if pattern.match(prompt):
                new = replacements[_pick(row_id, "p3", len(replacements))]
                return pattern.sub(new, prompt, count=1)
    return prompt
