"""Prices of frontier models and the exact cost of one call.

Default prices come from `genai-prices` (pydantic's maintained price table, bundled with the
package: no network). A catalog entry may override any rate. The cost of a call is what
genai-prices' own calculator gives over the resolved rates, in `Decimal`, so tiered prices
(Anthropic's long-context tier), cached-input rates and reasoning rates are applied exactly as
genai-prices defines them. For flat rates (most models) the calculator is asked once per model,
for the price of one token of each kind, and a call's cost is computed from those exact rates
(2 us instead of the calculator's ~200 us per call, scripts/bench_proxy_path.py; a test checks
both agree over every model of the table); tiered rates go through the calculator on every call:

- cached input tokens (`cache_read_tokens`) are a subset of input tokens and are charged at the
  cache-read rate instead of the input rate (at the input rate when the model has none);
- cache writes (Anthropic) are charged at the cache-write rate;
- reasoning tokens are a subset of output tokens, charged at `output_reasoning_mtok` where the
  table (or the catalog) gives one, else at the output rate (which is how OpenAI bills them).

A model whose input or output rate is unknown is refused (`PriceError`): it never costs $0
silently. An explicit 0 in the catalog is accepted (a self-hosted OpenAI-compatible server).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, TieredPrices
from genai_prices.types import Usage as PriceUsage

from switchyard.frontier_proxy.completion import TokenUsage

__all__ = [
    "OVERRIDE_KEYS",
    "PriceError",
    "PriceLookup",
    "Prices",
    "resolve_prices",
]

# Catalog names for overridable rates (USD per million tokens) -> genai-prices price keys.
OVERRIDE_KEYS: Mapping[str, str] = {
    "input_usd_per_mtok": "input_mtok",
    "output_usd_per_mtok": "output_mtok",
    "cached_input_usd_per_mtok": "cache_read_mtok",
    "cache_write_usd_per_mtok": "cache_write_mtok",
    "reasoning_usd_per_mtok": "output_reasoning_mtok",
}

_PRICE_TABLE = f"genai-prices {genai_prices.__version__}"


class PriceError(ValueError):
    """A model's price is unknown or invalid; the catalog refuses to load it."""


@dataclass(frozen=True, slots=True)
class PriceLookup:
    """Where to look a model up in genai-prices: a provider id or the provider's API URL."""

    model_ref: str
    provider_id: str | None = None
    provider_api_url: str | None = None


@dataclass(frozen=True, slots=True)
class Prices:
    """The resolved rates of one model and where they came from."""

    model_price: ModelPrice
    source: str
    # The model's context window according to genai-prices, when it knows the model.
    context_window: int | None = None
    # Flat rates: the cost of a call is linear in its token counts, so it is the intercept plus
    # one exact Decimal per count (input, cache read, cache write, output, reasoning), each
    # read off genai-prices' calculator once (`_linear_rates`). None: tiered, or the
    # calculator refused a probe; every call then goes through the calculator.
    _linear: tuple[Decimal, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_linear", _linear_rates(self.model_price))

    def cost_usd(self, usage: TokenUsage) -> Decimal:
        """The exact USD cost of `usage` at these rates (genai-prices' calculator's result; for
        flat rates computed from the per-token rates it gave, which
        tests/unit/frontier_proxy/test_frontier_pricing_catalog.py checks equal to it over
        every flat-priced model of the table)."""
        linear = self._linear
        inputs, cached, written = (
            usage.input_tokens,
            usage.cached_input_tokens,
            usage.cache_write_tokens,
        )
        outputs, reasoning = usage.output_tokens, usage.reasoning_tokens
        if (
            linear is not None
            and min(inputs, cached, written, outputs, reasoning) >= 0
            and cached + written <= inputs
            and reasoning <= outputs
        ):
            base, per_input, per_cached, per_written, per_output, per_reasoning = linear
            return (
                base
                + per_input * inputs
                + per_cached * cached
                + per_written * written
                + per_output * outputs
                + per_reasoning * reasoning
            )
        return _calculated(self.model_price, usage)

    def _rate(self, key: str) -> Decimal | None:
        value = getattr(self.model_price, key, None)
        if isinstance(value, TieredPrices):
            return value.base
        return value

    @property
    def input_usd_per_mtok(self) -> Decimal:
        return self._rate("input_mtok") or Decimal(0)

    @property
    def output_usd_per_mtok(self) -> Decimal:
        return self._rate("output_mtok") or Decimal(0)

    @property
    def cached_input_usd_per_mtok(self) -> Decimal:
        """The cache-read rate, or the input rate when the model has no cheaper one."""
        rate = self._rate("cache_read_mtok")
        return self.input_usd_per_mtok if rate is None else rate

    @property
    def tiered(self) -> bool:
        return _tiered(self.model_price)


def _tiered(model_price: ModelPrice) -> bool:
    return any(isinstance(v, TieredPrices) for v in model_price.__dict__.values())


def _calculated(model_price: ModelPrice, usage: TokenUsage) -> Decimal:
    priced = PriceUsage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cached_input_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_tokens=usage.output_tokens,
        output_reasoning_tokens=usage.reasoning_tokens,
    )
    try:
        return model_price.calc_price(priced)["total_price"]
    except ValueError as exc:  # inconsistent counts (e.g. cached > input) from the upstream
        raise PriceError(f"cannot price the reported usage: {exc}") from None


def _linear_rates(model_price: ModelPrice) -> tuple[Decimal, ...] | None:
    """The intercept and per-token rates of flat prices, as genai-prices' calculator prices
    one token of each kind (a cache read or write, or a reasoning token, on top of one input or
    output token, of which it is a part); None for tiered prices or a refused probe."""
    if _tiered(model_price):
        return None

    def price(**counts: int) -> Decimal:
        return model_price.calc_price(PriceUsage(**counts))["total_price"]

    try:
        base = price()
        one_in, one_out = price(input_tokens=1), price(output_tokens=1)
        return (
            base,
            one_in - base,
            price(input_tokens=1, cache_read_tokens=1) - one_in,
            price(input_tokens=1, cache_write_tokens=1) - one_in,
            one_out - base,
            price(output_tokens=1, output_reasoning_tokens=1) - one_out,
        )
    except ValueError:
        return None


def _table_price(lookup: PriceLookup, at: datetime) -> tuple[ModelPrice, int | None] | None:
    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(
            lookup.model_ref, None, lookup.provider_id, lookup.provider_api_url
        )
    except LookupError:
        return None
    return copy.copy(info.get_prices(at)), info.context_window


def _decimal(name: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise PriceError(f"prices.{name} must be a number, got {value!r}")
    try:
        rate = Decimal(str(value))
    except ArithmeticError:
        raise PriceError(f"prices.{name} must be a number, got {value!r}") from None
    if not rate.is_finite() or rate < 0:
        raise PriceError(f"prices.{name} must be a finite number >= 0, got {value!r}")
    return rate


def resolve_prices(
    model_name: str,
    lookup: PriceLookup | None,
    overrides: Mapping[str, object],
    *,
    at: datetime | None = None,
) -> Prices:
    """Rates for `model_name`: genai-prices' (when `lookup` finds it) with `overrides` on top.

    Raises `PriceError` naming the model when input or output rate stays unknown, or when an
    override is not a known rate or not a non-negative number.
    """
    unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
    if unknown:
        raise PriceError(
            f"model {model_name!r}: unknown price key(s) {', '.join(unknown)}; "
            f"known: {', '.join(OVERRIDE_KEYS)}"
        )
    found = _table_price(lookup, at or datetime.now(UTC)) if lookup is not None else None
    base, context_window = found if found is not None else (None, None)
    model_price = base if base is not None else ModelPrice()
    source = (
        f"{_PRICE_TABLE} ({lookup.provider_id or lookup.provider_api_url or 'any provider'}"
        f"/{lookup.model_ref})"
        if base is not None and lookup is not None
        else "catalog"
    )
    if overrides:
        for name, value in overrides.items():
            setattr(model_price, OVERRIDE_KEYS[name], _decimal(name, value))
        if base is not None:
            source += " with catalog overrides"
    missing = [
        name
        for name in ("input_usd_per_mtok", "output_usd_per_mtok")
        if getattr(model_price, OVERRIDE_KEYS[name], None) is None
    ]
    if missing:
        where = (
            f"genai-prices has no price for {lookup.model_ref!r}"
            + (f" at provider {lookup.provider_id!r}" if lookup.provider_id else "")
            + (f" at {lookup.provider_api_url!r}" if lookup.provider_api_url else "")
            if lookup is not None
            else "no price lookup is configured"
        )
        raise PriceError(
            f"model {model_name!r} has no known price ({where}); refusing to serve it at $0: "
            f"set prices.{' and prices.'.join(missing)} in the catalog"
        )
    return Prices(model_price=model_price, source=source, context_window=context_window)
