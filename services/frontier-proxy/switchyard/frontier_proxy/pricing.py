"""Prices of frontier models and the exact cost of one call.

Default prices come from `genai-prices` (pydantic's maintained price table, bundled with the
package: no network). A catalog entry may override any rate. The cost of a call is computed by
genai-prices' own calculator over the resolved rates, in `Decimal`, so tiered prices (Anthropic's
long-context tier), cached-input rates and reasoning rates are applied exactly as genai-prices
defines them:

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
from dataclasses import dataclass
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

    def cost_usd(self, usage: TokenUsage) -> Decimal:
        """The exact USD cost of `usage` at these rates."""
        priced = PriceUsage(
            input_tokens=usage.input_tokens,
            cache_read_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            output_tokens=usage.output_tokens,
            output_reasoning_tokens=usage.reasoning_tokens,
        )
        try:
            return self.model_price.calc_price(priced)["total_price"]
        except ValueError as exc:  # inconsistent counts (e.g. cached > input) from the upstream
            raise PriceError(f"cannot price the reported usage: {exc}") from None

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
        return any(isinstance(v, TieredPrices) for v in self.model_price.__dict__.values())


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
