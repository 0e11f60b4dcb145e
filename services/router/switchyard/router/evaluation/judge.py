"""The judge: its prompt, reading its replies, and combining the two orders. Pure.

The judge compares two answers to one request, pairwise, ties allowed. It is asked twice, once
with the local answer as A and once with the frontier answer as A, so that a judge that
prefers a position cancels out (docs/services/outcomes.md has the prompt in full):

- `judge_messages(conversation, answer_a, answer_b, ...)`: the messages sent to the judge;
- `read_reply(text, local_first)`: the tier one reply prefers, or UNPARSEABLE (a reply without
  exactly one `VERDICT: A|B|TIE` is never guessed at);
- `combine(first, second)`: a tier wins only when it wins in both orders (MT-Bench's swap);
  any other pair of parsed answers is a tie; an unparseable one makes the whole unparseable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from switchyard.api.inference.v1 import inference_pb2
from switchyard.router.ledger.outcome_records import JudgeOrder, Verdict

__all__ = [
    "CUT_MARK",
    "JUDGE_INSTRUCTIONS",
    "JUDGE_QUESTION",
    "combine",
    "judge_messages",
    "read_reply",
    "render_conversation",
]

JUDGE_INSTRUCTIONS = (
    "You are an impartial judge. You compare two answers to the same request and decide which "
    "one serves the user better: more correct, more complete where it matters, and following "
    "the request's instructions. Do not let the order of the answers, their length or their "
    "style sway you. If they are equally good, or equally bad, it is a tie."
)
JUDGE_QUESTION = (
    "Which answer is better? Reply with exactly one line and nothing else: "
    "VERDICT: A, VERDICT: B or VERDICT: TIE"
)
#: Marks where a request or an answer was cut to fit the judge's prompt.
CUT_MARK = "[...]"

_ROLE_NAMES = {
    inference_pb2.ROLE_SYSTEM: "system",
    inference_pb2.ROLE_USER: "user",
    inference_pb2.ROLE_ASSISTANT: "assistant",
}
_VERDICT = re.compile(r"VERDICT\s*:\s*\**\s*(A|B|TIE)\b", re.IGNORECASE)


def _keep_end(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return CUT_MARK + "\n" + text[len(text) - limit :]


def _keep_start(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + "\n" + CUT_MARK


def render_conversation(messages: Sequence[inference_pb2.ChatMessage], limit: int) -> str:
    """The request as the judge sees it: one message's text alone, several as `[role]` then
    text each; the end is kept within `limit` characters."""
    turns = [m for m in messages if m.content.strip()]
    if len(turns) == 1 and turns[0].role == inference_pb2.ROLE_USER:
        return _keep_end(turns[0].content, limit)
    text = "\n\n".join(f"[{_ROLE_NAMES.get(m.role, 'user')}]\n{m.content}" for m in turns)
    return _keep_end(text, limit)


def judge_messages(
    conversation: Sequence[inference_pb2.ChatMessage],
    answer_a: str,
    answer_b: str,
    *,
    max_request_chars: int,
    max_answer_chars: int,
) -> list[inference_pb2.ChatMessage]:
    """The judge's system and user messages comparing `answer_a` with `answer_b`."""
    request = render_conversation(conversation, max_request_chars)
    body = (
        f"Request:\n<request>\n{request}\n</request>\n\n"
        f"Answer A:\n<answer_a>\n{_keep_start(answer_a, max_answer_chars)}\n</answer_a>\n\n"
        f"Answer B:\n<answer_b>\n{_keep_start(answer_b, max_answer_chars)}\n</answer_b>\n\n"
        f"{JUDGE_QUESTION}"
    )
    return [
        inference_pb2.ChatMessage(role=inference_pb2.ROLE_SYSTEM, content=JUDGE_INSTRUCTIONS),
        inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content=body),
    ]


def read_reply(text: str, *, local_first: bool) -> JudgeOrder:
    """The tier a judge reply prefers; `local_first`: the local answer was A."""
    found = {match.upper() for match in _VERDICT.findall(text)}
    if len(found) != 1:
        return JudgeOrder.UNPARSEABLE
    (letter,) = found
    if letter == "TIE":
        return JudgeOrder.TIE
    if (letter == "A") == local_first:
        return JudgeOrder.LOCAL
    return JudgeOrder.FRONTIER


def combine(first: JudgeOrder, second: JudgeOrder) -> Verdict:
    """Both orders' answers as one verdict (see the module docstring)."""
    orders = (first, second)
    if JudgeOrder.UNPARSEABLE in orders or JudgeOrder.NOT_ASKED in orders:
        return Verdict.UNPARSEABLE
    if orders == (JudgeOrder.LOCAL, JudgeOrder.LOCAL):
        return Verdict.LOCAL_BETTER
    if orders == (JudgeOrder.FRONTIER, JudgeOrder.FRONTIER):
        return Verdict.FRONTIER_BETTER
    return Verdict.TIE
