"""Admission (pure): every call gets an output cap, and a call that cannot fit the model's
context window is refused naming the window; the catalog knows every model's window."""

from __future__ import annotations

from typing import Any

import pytest

from switchyard.frontier_proxy.admission import (
    PROMPT_BYTES_PER_TOKEN,
    TOKENS_PER_MESSAGE,
    admit,
    estimated_prompt_tokens,
)
from switchyard.frontier_proxy.catalog import (
    BUILTIN_MODELS,
    CatalogError,
    CatalogModel,
    builtin_catalog,
    parse_catalog,
)
from switchyard.frontier_proxy.completion import ChatCall, ChatTurn, Sampling, TurnRole
from switchyard.frontier_proxy.conversion import model_info
from switchyard.frontier_proxy.pricing import PriceLookup, resolve_prices
from switchyard.runtime.errors import InvalidArgument


def small_model(**fields: Any) -> CatalogModel:
    entry = {
        "name": "small",
        "provider": "openai_compatible",
        "base_url": "http://127.0.0.1:9/v1",
        "price_lookup": False,
        "prices": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 1},
        "context_window": 2048,
        "default_max_tokens": 256,
        **fields,
    }
    return parse_catalog({"models": [entry]}, {}).models["small"]


def call(text: str, max_tokens: int | None = None) -> ChatCall:
    return ChatCall((ChatTurn(TurnRole.USER, text),), Sampling(max_tokens=max_tokens))


def test_a_call_without_max_tokens_gets_the_models_default() -> None:
    model = small_model()
    assert admit(model, call("hi")).sampling.max_tokens == 256
    assert admit(model, call("hi", max_tokens=10)).sampling.max_tokens == 10


def test_a_prompt_that_cannot_fit_is_refused_naming_the_window() -> None:
    model = small_model()
    # ~90 KB, the size that went to a 2048-token model in issue 12.
    document = "The quarterly report says revenue grew. " * 2300
    with pytest.raises(InvalidArgument) as info:
        admit(model, call(document))
    assert "context window of 2048 tokens" in info.value.message
    assert "'small'" in info.value.message
    with pytest.raises(InvalidArgument, match="max_tokens 4096 does not fit"):
        admit(model, call("hi", max_tokens=4096))


def test_the_estimate_errs_low_so_a_prompt_that_fits_is_sent() -> None:
    model = small_model()
    # English prose runs at ~4-5 bytes per token: ~1500 real tokens + 256 fit in 2048.
    prose = "The cat sat on the mat. " * 260  # 6240 bytes
    assert estimated_prompt_tokens(call(prose)) < 1500
    admit(model, call(prose))
    # Runs of whitespace (indented code) count as one byte.
    assert estimated_prompt_tokens(call("x" + " " * 10_000 + "y")) == 1 + TOKENS_PER_MESSAGE
    assert estimated_prompt_tokens(call("a" * PROMPT_BYTES_PER_TOKEN * 10)) == 10 + 3


def test_the_catalog_refuses_a_default_that_does_not_fit_the_window() -> None:
    with pytest.raises(CatalogError, match="default_max_tokens 4096 does not fit"):
        small_model(default_max_tokens=4096)
    # Unset, the default is 1024, or half a window too small for it.
    assert small_model(default_max_tokens=None).default_max_tokens == 1024
    assert small_model(default_max_tokens=None, context_window=1024).default_max_tokens == 512


def test_every_builtin_model_has_its_window_and_list_models_reports_it() -> None:
    catalog = builtin_catalog({"OPENAI_API_KEY": "o", "ANTHROPIC_API_KEY": "a"})
    windows = {name: model_info(m).context_window for name, m in catalog.models.items()}
    assert windows == {
        "gpt-4o-mini": 128_000,
        "gpt-4o": 128_000,
        "claude-haiku-4-5": 200_000,
        "claude-sonnet-4-5": 200_000,
    }
    # The stated windows agree with the price table's model data.
    for entry in BUILTIN_MODELS:
        lookup = PriceLookup(entry["name"], provider_id=entry["provider"])
        assert resolve_prices(entry["name"], lookup, {}).context_window == entry["context_window"]
