"""Redaction: the one function every upstream text passes on its way to a log, a span or an error.

Text a service did not write itself (an upstream's error body, an in-stream error event, an
exception's message, a configured URL) can carry a credential: a provider echoing the key it
refused, a proxy URL with a password, a query string with `api_key=`. Before such text reaches
a log line, a span attribute or event, a recorded exception or an error message sent to a
caller, it goes through `Redactor.redact`, which replaces

- every secret the process holds (`Redactor(secrets)`: API keys, URL passwords), and every run
  of at least `min_fragment` characters of one (an upstream that quotes part of a key, or cuts
  it where its message is truncated), by `[redacted]`;
- what looks like a credential whatever its value: the password of a URL
  (`https://user:[redacted]@host`), credential-named query or form parameters
  (`api_key=[redacted]`), `Authorization` / `x-api-key` style headers and `Bearer` tokens, and
  provider-style keys (`sk-...`), so a key the process does not hold (a caller's, an upstream's
  example) is not passed on either.

Redaction keeps the rest of the text, so an error stays useful ("Incorrect API key provided:
[redacted]"). It is pure and cheap for error-path text: known secrets are found with a scan over
a set of fixed-length windows (linear in the text's length), patterns with one compiled regular
expression. Text longer than `max_chars` is cut first (a secret cut in two leaves fragments that
the window scan still finds, or pieces too short to matter).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MAX_REDACTED_CHARS", "MIN_SECRET_FRAGMENT", "REDACTED", "Redactor"]

REDACTED = "[redacted]"
# Runs this long of a held secret are redacted; shorter ones (the 4 last characters OpenAI
# quotes on purpose) say nothing usable about the key.
MIN_SECRET_FRAGMENT = 10
# Upstream text longer than this is cut before redaction (error bodies can be whole pages).
MAX_REDACTED_CHARS = 16_384

_CREDENTIAL_NAMES = (
    r"api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|id[_-]?token|token|secret|"
    r"client[_-]?secret|password|passwd|pwd|sig|signature|x-goog-api-key|key"
)
_PATTERNS = re.compile(
    "|".join(
        (
            # scheme://user:password@host -> keep the user, redact the password.
            r"(?P<url>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*:)(?P<url_secret>[^\s@/]+)(?=@)",
            # Authorization: Bearer xyz / x-api-key: xyz / "api-key": "xyz"
            r"(?P<header>(?:proxy-)?authorization|x-api-key|api-key|anthropic-api-key)"
            r"(?P<header_sep>[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)"
            r"(?P<header_secret>[^\s\"',;}]+)",
            # ?api_key=xyz&... , "token": "xyz", secret=xyz
            rf"(?P<param>(?<![a-zA-Z0-9_-])(?:{_CREDENTIAL_NAMES}))"
            r"(?P<param_sep>[\"']?\s*[:=]\s*[\"']?)(?P<param_secret>[^\s\"'&,;}]{6,})",
            # A bearer token anywhere.
            r"(?P<bearer>\bbearer\s+)(?P<bearer_secret>[A-Za-z0-9._~+/=-]{8,})",
            # Provider-style keys: sk-..., sk-proj-..., sk-ant-api03-...
            r"(?P<key>(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{16,})",
        )
    ),
    re.IGNORECASE,
)


def _pattern_replacement(match: re.Match[str]) -> str:
    groups = match.groupdict()
    if groups["url_secret"] is not None:
        return groups["url"] + REDACTED
    if groups["header_secret"] is not None:
        return groups["header"] + groups["header_sep"] + REDACTED
    if groups["param_secret"] is not None:
        return groups["param"] + groups["param_sep"] + REDACTED
    if groups["bearer_secret"] is not None:
        return groups["bearer"] + REDACTED
    return REDACTED


class Redactor:
    """Redacts `secrets` (and anything credential-shaped) from text; see the module docstring.

    Build one per process from every secret it holds, and pass it to whatever turns upstream
    text into logs, spans or errors. `redact` is the one function that text goes through.
    """

    __slots__ = ("_exact", "_max_chars", "_min_fragment", "_windows")

    def __init__(
        self,
        secrets: Iterable[str] = (),
        *,
        min_fragment: int = MIN_SECRET_FRAGMENT,
        max_chars: int = MAX_REDACTED_CHARS,
    ) -> None:
        if min_fragment < 4:
            raise ValueError("min_fragment must be >= 4")
        held = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._min_fragment = min_fragment
        self._max_chars = max_chars
        # Whole secrets are replaced first (longest first); a secret shorter than a fragment
        # can only be matched whole.
        self._exact = tuple(held)
        self._windows = frozenset(
            s[i : i + min_fragment]
            for s in held
            if len(s) >= min_fragment
            for i in range(len(s) - min_fragment + 1)
        )

    def redact(self, text: object) -> str:
        """`text` (or `str(text)`) with every secret and credential-shaped part redacted."""
        value = text if isinstance(text, str) else str(text)
        if len(value) > self._max_chars:
            value = value[: self._max_chars] + "..."
        for secret in self._exact:
            if secret in value:
                value = value.replace(secret, REDACTED)
        if self._windows:
            value = self._redact_fragments(value)
        return _PATTERNS.sub(_pattern_replacement, value)

    __call__ = redact

    def _redact_fragments(self, text: str) -> str:
        m = self._min_fragment
        windows = self._windows
        spans: list[list[int]] = []
        for i in range(len(text) - m + 1):
            if text[i : i + m] in windows:
                if spans and i <= spans[-1][1]:
                    spans[-1][1] = i + m
                else:
                    spans.append([i, i + m])
        if not spans:
            return text
        out: list[str] = []
        last = 0
        for start, end in spans:
            out.append(text[last:start])
            out.append(REDACTED)
            last = end
        out.append(text[last:])
        return "".join(out)

    def __repr__(self) -> str:
        return f"Redactor({len(self._exact)} secret(s))"
