"""The one redaction function: held secrets (whole or in part) and credential-shaped text go,
the rest of the message stays."""

from __future__ import annotations

import pytest

from switchyard.runtime.redaction import MIN_SECRET_FRAGMENT, REDACTED, Redactor

KEY = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
OTHER = "pw-0123456789-abcdefghij"


def test_held_secrets_are_replaced_wherever_they_are() -> None:
    redact = Redactor([KEY, OTHER, ""])
    assert (
        redact(f"Incorrect API key provided: {KEY}.") == f"Incorrect API key provided: {REDACTED}."
    )
    assert redact(f"{OTHER}/{KEY}") == f"{REDACTED}/{REDACTED}"
    assert redact(ValueError(f"bad {KEY}")) == f"bad {REDACTED}"  # any object, as str()


def test_fragments_of_a_held_secret_are_replaced_short_ones_kept() -> None:
    redact = Redactor([KEY])
    middle = KEY[5:-5]
    assert redact(f"the key ending {middle} is bad") == f"the key ending {REDACTED} is bad"
    cut = KEY[:MIN_SECRET_FRAGMENT]  # a message truncated inside the key
    assert redact(f"key {cut}") == f"key {REDACTED}"
    # What providers show on purpose (a few last characters) says nothing usable.
    assert redact(f"key ending ...{KEY[-4:]}") == f"key ending ...{KEY[-4:]}"
    # Two overlapping pieces make one redaction.
    assert redact(KEY[:20] + KEY[10:30]) == REDACTED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "proxy http://bob:hunter2-secret@proxy.internal:3128 refused",
            "proxy http://bob:[redacted]@proxy.internal:3128 refused",
        ),
        ("Authorization: Bearer abcdefghijklmnop", "Authorization: Bearer [redacted]"),
        ('{"x-api-key": "zzzzzzzzzzzzzzzz"}', '{"x-api-key": "[redacted]"}'),
        (
            "GET /v1/models?api_key=AIzaSyD-abc123&alt=json",
            "GET /v1/models?api_key=[redacted]&alt=json",
        ),
        ("token=eyJhbGciOiJIUzI1NiJ9.payload", "token=[redacted]"),
        ("sent bearer 0123456789abcdef", "sent bearer [redacted]"),
        ("someone else's key sk-proj-AAAABBBBCCCCDDDDEEEE1234", "someone else's key [redacted]"),
    ],
)
def test_credential_shaped_text_is_replaced_even_when_not_held(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "HTTP 503: the server is overloaded",
        "max_tokens: must be <= 4096; prompt is 210000 tokens",
        "Authorization header is missing",
        "connect to http://127.0.0.1:8080/v1 failed",
        "Incorrect API key provided: sk-proj-****************abcd.",
        "messages.0.content: Input should be a valid list",
    ],
)
def test_ordinary_messages_pass_unchanged(text: str) -> None:
    assert Redactor([KEY]).redact(text) == text


def test_long_text_is_cut_before_redaction_and_a_cut_secret_still_goes() -> None:
    redact = Redactor([KEY], max_chars=100)
    text = "x" * 80 + KEY
    out = redact(text)
    assert out.startswith("x" * 80 + REDACTED)
    assert KEY[:MIN_SECRET_FRAGMENT] not in out
    assert len(redact("y" * 10_000)) == 103  # 100 and "..."


def test_repr_never_shows_a_secret() -> None:
    assert KEY not in repr(Redactor([KEY]))
    with pytest.raises(ValueError):
        Redactor([KEY], min_fragment=2)
