"""Prices (genai-prices defaults, overrides, refusal of unknown prices) and the catalog."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from switchyard.frontier_proxy.catalog import (
    CatalogError,
    ProviderKind,
    Secret,
    builtin_catalog,
    load_catalog,
    parse_catalog,
)
from switchyard.frontier_proxy.completion import TokenUsage
from switchyard.frontier_proxy.pricing import PriceError, PriceLookup, resolve_prices

M = Decimal(1_000_000)


def test_genai_prices_defaults_price_cached_input_at_its_rate() -> None:
    prices = resolve_prices("gpt-4o", PriceLookup("gpt-4o", provider_id="openai"), {})
    cost = prices.cost_usd(
        TokenUsage(input_tokens=1000, output_tokens=500, cached_input_tokens=200)
    )
    assert cost == (800 * Decimal("2.5") + 200 * Decimal("1.25") + 500 * Decimal("10")) / M
    assert prices.source.startswith("genai-prices")
    assert prices.context_window == 128000


def test_reasoning_tokens_at_output_rate_unless_a_reasoning_rate_is_set() -> None:
    usage = TokenUsage(input_tokens=100, output_tokens=50, reasoning_tokens=30)
    base = {"input_usd_per_mtok": 1, "output_usd_per_mtok": 2}
    assert resolve_prices("m", None, base).cost_usd(usage) == (100 * 1 + 50 * 2) / M
    own = resolve_prices("m", None, {**base, "reasoning_usd_per_mtok": "5"})
    assert own.cost_usd(usage) == (100 * 1 + 20 * 2 + 30 * 5) / M


def test_cache_writes_priced_at_cache_write_rate() -> None:
    prices = resolve_prices(
        "claude-haiku-4-5", PriceLookup("claude-haiku-4-5", provider_id="anthropic"), {}
    )
    usage = TokenUsage(
        input_tokens=1000, output_tokens=10, cached_input_tokens=100, cache_write_tokens=200
    )
    expected = (
        700 * Decimal(1) + 100 * Decimal("0.1") + 200 * Decimal("1.25") + 10 * Decimal(5)
    ) / M
    assert prices.cost_usd(usage) == expected


def test_long_context_tier_applies_to_the_whole_request() -> None:
    prices = resolve_prices("sonnet", PriceLookup("claude-sonnet-4-5", provider_id="anthropic"), {})
    assert prices.tiered
    small = prices.cost_usd(TokenUsage(input_tokens=100_000, output_tokens=0))
    large = prices.cost_usd(TokenUsage(input_tokens=300_000, output_tokens=0))
    assert small == 100_000 * Decimal(3) / M
    assert large == 300_000 * Decimal(6) / M


def test_overrides_replace_single_rates() -> None:
    prices = resolve_prices(
        "gpt-4o", PriceLookup("gpt-4o", provider_id="openai"), {"output_usd_per_mtok": "12"}
    )
    assert prices.output_usd_per_mtok == Decimal(12)
    assert prices.input_usd_per_mtok == Decimal("2.5")
    assert "overrides" in prices.source


def test_unknown_price_is_refused_never_zero() -> None:
    with pytest.raises(PriceError, match="refusing to serve it at \\$0"):
        resolve_prices("mine", PriceLookup("no-such-model-anywhere", provider_id="openai"), {})
    with pytest.raises(PriceError, match="output_usd_per_mtok"):
        resolve_prices("mine", None, {"input_usd_per_mtok": 1})
    with pytest.raises(PriceError, match="unknown price key"):
        resolve_prices("mine", None, {"input_usd": 1})
    with pytest.raises(PriceError, match=">= 0"):
        resolve_prices("mine", None, {"input_usd_per_mtok": -1, "output_usd_per_mtok": 1})
    explicit_zero = resolve_prices(
        "self-hosted", None, {"input_usd_per_mtok": 0, "output_usd_per_mtok": 0}
    )
    assert explicit_zero.cost_usd(TokenUsage(10, 10)) == 0


def test_inconsistent_usage_cannot_be_priced() -> None:
    prices = resolve_prices(
        "m",
        None,
        {"input_usd_per_mtok": 1, "output_usd_per_mtok": 1, "cached_input_usd_per_mtok": 0.5},
    )
    with pytest.raises(PriceError):
        prices.cost_usd(TokenUsage(input_tokens=1, output_tokens=1, cached_input_tokens=5))


def test_catalog_lists_every_problem_at_once(tmp_path: Path) -> None:
    document = {
        "default_model": "nope",
        "models": [
            {"name": "a", "provider": "openai", "api_key_env": "MISSING_KEY"},
            {
                "name": "b",
                "provider": "openai_compatible",
                "prices": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 1},
            },
            {"name": "c", "provider": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"},
            {"name": "a", "provider": "anthropic"},
        ],
    }
    with pytest.raises(CatalogError) as info:
        parse_catalog(document, {"ANTHROPIC_API_KEY": "k"})
    text = str(info.value)
    assert "MISSING_KEY" in text
    assert "base_url is required" in text
    assert "model 'c' has no known price" in text
    assert "listed twice" in text
    assert "default_model 'nope'" in text
    assert "model 'a' has no known price" in text  # "a" is in no price table either
    assert len(info.value.problems) == 6


def test_catalog_schema_errors() -> None:
    with pytest.raises(CatalogError, match="provider"):
        parse_catalog({"models": [{"name": "x", "provider": "azure"}]}, {})
    with pytest.raises(CatalogError, match="Extra inputs"):
        parse_catalog({"models": [{"name": "x", "provider": "openai", "colour": 1}]}, {})
    with pytest.raises(CatalogError, match="http"):
        parse_catalog(
            {"models": [{"name": "x", "provider": "openai", "base_url": "ftp://x"}]},
            {"OPENAI_API_KEY": "k"},
        )


def test_catalog_file_with_key_file_and_defaults(tmp_path: Path) -> None:
    key_file = tmp_path / "openai.key"
    key_file.write_text("sk-from-file\n")
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "models:\n"
        "  - name: fast\n"
        "    provider: openai\n"
        "    upstream_model: gpt-4o-mini\n"
        f"    api_key_file: {key_file}\n"
        "  - name: local\n"
        "    provider: openai_compatible\n"
        "    base_url: http://127.0.0.1:8000/v1/\n"
        "    context_window: 2048\n"
        "    prices: {input_usd_per_mtok: 0, output_usd_per_mtok: 0}\n"
    )
    catalog = load_catalog(path, env={})
    fast = catalog.models["fast"]
    assert fast.api_key == Secret("sk-from-file")
    assert fast.key_source == f"file {key_file}"
    assert fast.base_url == "https://api.openai.com/v1"
    assert fast.prices.input_usd_per_mtok == Decimal("0.15")
    local = catalog.models["local"]
    assert local.api_key is None and local.base_url == "http://127.0.0.1:8000/v1"
    assert catalog.default_model == "fast"
    assert catalog.get("") is fast
    assert catalog.secrets() == ["sk-from-file"]
    assert "sk-from-file" not in repr(catalog)


def test_catalog_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "absent.yaml", env={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(CatalogError, match="YAML"):
        load_catalog(bad, env={})


def test_builtin_catalog_holds_only_models_whose_key_is_set() -> None:
    only_anthropic = builtin_catalog({"ANTHROPIC_API_KEY": "sk-ant"})
    assert set(only_anthropic.models) == {"claude-haiku-4-5", "claude-sonnet-4-5"}
    assert all(m.provider is ProviderKind.ANTHROPIC for m in only_anthropic.models.values())
    both = builtin_catalog({"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o"})
    assert both.default_model == "gpt-4o-mini" and len(both.models) == 4
    with pytest.raises(CatalogError, match="no model available"):
        builtin_catalog({})


def test_secret_never_shows_itself() -> None:
    secret = Secret("sk-very-secret")
    assert "sk-very-secret" not in repr(secret) and "sk-very-secret" not in str(secret)
    assert f"{secret}" == "Secret('********')"
    assert secret.reveal() == "sk-very-secret"


def _table_models() -> list[tuple[str, str]]:
    """(provider id, model id) of every model in genai-prices' bundled table."""
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    return [(p.id, m.id) for p in snapshot.providers for m in p.models]


def test_flat_rates_cost_what_the_calculator_says_for_every_model_in_the_table() -> None:
    """`Prices.cost_usd` computes flat rates from per-token rates read off genai-prices'
    calculator once; over every model of the table, and many usages (cache reads and writes,
    reasoning, at the edges of what is valid), the result must be the calculator's, exactly.
    Tiered models keep the calculator (the long-context test above checks one)."""
    import random

    from switchyard.frontier_proxy.pricing import _calculated  # the calculator's path

    rng = random.Random(17)
    usages = [
        TokenUsage(input_tokens=0, output_tokens=0),
        TokenUsage(input_tokens=1, output_tokens=1),
        TokenUsage(input_tokens=10, cached_input_tokens=10, output_tokens=3, reasoning_tokens=3),
        TokenUsage(input_tokens=10, cached_input_tokens=4, cache_write_tokens=6),
    ]
    for _ in range(40):
        inputs, outputs = rng.randint(0, 300_000), rng.randint(0, 60_000)
        cached = rng.randint(0, inputs)
        written = rng.randint(0, inputs - cached)
        usages.append(
            TokenUsage(
                input_tokens=inputs,
                output_tokens=outputs,
                cached_input_tokens=cached,
                cache_write_tokens=written,
                reasoning_tokens=rng.randint(0, outputs),
            )
        )
    flat = tiered = 0
    for provider, model in _table_models():
        try:
            prices = resolve_prices(model, PriceLookup(model, provider_id=provider), {})
        except PriceError:
            continue  # no input or output rate: refused at load, never priced
        if prices.tiered:
            tiered += 1
        else:
            flat += 1
        for usage in usages:
            try:
                expected = _calculated(prices.model_price, usage)
            except PriceError:
                with pytest.raises(PriceError):
                    prices.cost_usd(usage)
                continue
            assert prices.cost_usd(usage) == expected, (provider, model, usage)
    assert flat > 500 and tiered > 10  # the table's models, both kinds


def test_overridden_flat_rates_are_linear_too() -> None:
    prices = resolve_prices(
        "m",
        None,
        {
            "input_usd_per_mtok": "0.3",
            "output_usd_per_mtok": 2,
            "cached_input_usd_per_mtok": 0.03,
            "cache_write_usd_per_mtok": "0.375",
            "reasoning_usd_per_mtok": 3,
        },
    )
    usage = TokenUsage(
        input_tokens=1000,
        cached_input_tokens=300,
        cache_write_tokens=200,
        output_tokens=100,
        reasoning_tokens=40,
    )
    expected = (
        500 * Decimal("0.3")
        + 300 * Decimal("0.03")
        + 200 * Decimal("0.375")
        + 60 * Decimal(2)
        + 40 * Decimal(3)
    ) / M
    assert prices.cost_usd(usage) == expected
