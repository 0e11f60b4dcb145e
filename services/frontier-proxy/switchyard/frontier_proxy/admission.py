"""What a call asks of its model before it is sent: its output cap and its context window (pure).

- **max_tokens.** A call with no `max_tokens` is sent with the catalog model's
  `default_max_tokens`, on every wire format (OpenAI's `max_completion_tokens`, the
  OpenAI-compatible `max_tokens`, Anthropic's required `max_tokens`): no frontier call is
  uncapped.
- **Context window.** A call whose prompt plus output cap cannot fit the model's
  `context_window` is refused with INVALID_ARGUMENT naming the window, before any upstream is
  called (and before any money is spent).

The proxy has no tokenizer for the providers' models, so the prompt's size is an estimate that
errs low: `PROMPT_BYTES_PER_TOKEN` UTF-8 bytes per token (after runs of whitespace are counted
as one byte), where English prose runs at about 4-5 bytes per token in the providers' tokenizers
and code and other scripts at fewer. So a prompt is refused only when it exceeds the window by
a wide margin; a prompt near the limit goes to the upstream, whose own refusal (HTTP 400) comes
back as INVALID_ARGUMENT too. Every message also costs `TOKENS_PER_MESSAGE` (the chat format's
role markers).
"""

from __future__ import annotations

import dataclasses
import math
import re

from switchyard.frontier_proxy.catalog import CatalogModel
from switchyard.frontier_proxy.completion import ChatCall
from switchyard.runtime.errors import InvalidArgument

__all__ = [
    "PROMPT_BYTES_PER_TOKEN",
    "TOKENS_PER_MESSAGE",
    "admit",
    "estimated_prompt_tokens",
]

PROMPT_BYTES_PER_TOKEN = 6
TOKENS_PER_MESSAGE = 3

_WHITESPACE_RUN = re.compile(r"\s{2,}")


def estimated_prompt_tokens(call: ChatCall) -> int:
    """A low estimate of the prompt's tokens (see the module docstring)."""
    size = 0
    for turn in call.turns:
        text = _WHITESPACE_RUN.sub(" ", turn.content)
        size += math.ceil(len(text.encode("utf-8")) / PROMPT_BYTES_PER_TOKEN) + TOKENS_PER_MESSAGE
    return size


def admit(model: CatalogModel, call: ChatCall) -> ChatCall:
    """`call` as it will be sent to `model` (its max_tokens set); raises `InvalidArgument` when it
    cannot fit the model's context window."""
    max_tokens = call.sampling.max_tokens or model.default_max_tokens
    window = model.context_window
    if max_tokens >= window:
        raise InvalidArgument(
            f"max_tokens {max_tokens} does not fit model {model.name!r}'s context window of "
            f"{window} tokens (prompt and output together)"
        )
    prompt = estimated_prompt_tokens(call)
    if prompt + max_tokens > window:
        raise InvalidArgument(
            f"the prompt (at least ~{prompt} tokens, estimated) plus max_tokens {max_tokens} does "
            f"not fit model {model.name!r}'s context window of {window} tokens; shorten the "
            "prompt or choose a model with a larger window"
        )
    if call.sampling.max_tokens == max_tokens:
        return call
    return dataclasses.replace(
        call, sampling=dataclasses.replace(call.sampling, max_tokens=max_tokens)
    )
