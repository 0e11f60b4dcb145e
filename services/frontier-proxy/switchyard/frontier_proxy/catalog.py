"""The model catalog: our model names -> provider, upstream model, base URL, key and prices.

The catalog is a YAML (or JSON) file named by `SWITCHYARD_FRONTIER_PROXY_CATALOG`:

```yaml
default_model: gpt-4o-mini          # optional; else the first model
models:
  - name: gpt-4o-mini               # what callers ask for
    provider: openai                # openai | anthropic | openai_compatible
    upstream_model: gpt-4o-mini     # default: name
    base_url: https://api.openai.com/v1   # default per provider; required for openai_compatible
    api_key_env: OPENAI_API_KEY     # or api_key_file: /run/secrets/openai (one of them;
                                    # optional for openai_compatible)
    provider_name: openai           # reported in spans and answers; default: provider
    price_lookup:                   # where genai-prices is asked; default: the provider
      provider_id: openai           #   (openai/anthropic) or the base URL (openai_compatible);
      model: gpt-4o-mini            #   `price_lookup: false` disables the lookup
    prices:                         # USD per million tokens; any rate overrides genai-prices'
      input_usd_per_mtok: 0.15
    context_window: 128000          # prompt + output tokens; default: genai-prices'
    default_max_tokens: 1024        # sent when the caller sets none, on every wire format;
                                    # default 1024, or half a smaller context window
```

Loading checks everything and raises one `CatalogError` listing every problem: unknown keys,
missing keys (the environment variable or file), models with no known price (never $0) or no
known context window, and a `default_max_tokens` that does not fit the window. Keys are read
once, at load, into `Secret`s whose repr never shows them.

Without a file, the built-in catalog (`BUILTIN_MODELS`) is used: OpenAI's gpt-4o-mini and
gpt-4o when `OPENAI_API_KEY` is set, Anthropic's claude-haiku-4-5 and claude-sonnet-4-5 when
`ANTHROPIC_API_KEY` is set; prices from genai-prices, context windows stated in
`BUILTIN_MODELS` (the providers' documented windows; a test checks genai-prices agrees). A
catalog with no model is an error.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from switchyard.frontier_proxy.pricing import PriceError, PriceLookup, Prices, resolve_prices

__all__ = [
    "BUILTIN_MODELS",
    "Catalog",
    "CatalogError",
    "CatalogModel",
    "ProviderKind",
    "Secret",
    "builtin_catalog",
    "load_catalog",
    "parse_catalog",
]


class CatalogError(ValueError):
    """The catalog cannot be loaded; the message lists every problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid model catalog {source} ({len(problems)} problem(s)):\n{lines}")
        self.problems = problems


class ProviderKind(enum.StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    OPENAI_COMPATIBLE = "openai_compatible"


DEFAULT_BASE_URL = {
    ProviderKind.OPENAI: "https://api.openai.com/v1",
    ProviderKind.ANTHROPIC: "https://api.anthropic.com/v1",
}
DEFAULT_KEY_ENV = {
    ProviderKind.OPENAI: "OPENAI_API_KEY",
    ProviderKind.ANTHROPIC: "ANTHROPIC_API_KEY",
}
DEFAULT_MAX_TOKENS = 1024


class Secret:
    """An API key. Its repr and str never show it; `reveal()` does, for the HTTP header only."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """One servable model, resolved: key read, prices known."""

    name: str
    provider: ProviderKind
    provider_name: str
    upstream_model: str
    base_url: str
    api_key: Secret | None
    # Where the key comes from, for errors ("$OPENAI_API_KEY", "file /run/..."): never the key.
    key_source: str
    prices: Prices
    context_window: int
    default_max_tokens: int


@dataclass(frozen=True, slots=True)
class Catalog:
    models: Mapping[str, CatalogModel]
    default_model: str
    source: str

    def get(self, name: str) -> CatalogModel | None:
        return self.models.get(name or self.default_model)

    def secrets(self) -> list[str]:
        """Every key's value and every password in a base URL: what upstream text is redacted
        of before it reaches a log, a span or an error (and what tests look for in them)."""
        found = [m.api_key.reveal() for m in self.models.values() if m.api_key is not None]
        for model in self.models.values():
            password = urlsplit(model.base_url).password
            if password:
                found.append(password)
        return found


class _PriceLookupEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    provider_id: str | None = None
    provider_api_url: str | None = None
    model: str | None = None


class _ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=200)
    provider: ProviderKind
    upstream_model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    api_key_file: Path | None = None
    provider_name: str | None = None
    price_lookup: _PriceLookupEntry | Literal[False] | None = None
    prices: dict[str, Any] = Field(default_factory=dict)
    context_window: int | None = Field(None, gt=0)
    default_max_tokens: int | None = Field(None, gt=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value


class _CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    default_model: str | None = None
    models: list[_ModelEntry] = Field(min_length=1)


def _read_key(entry: _ModelEntry, env: Mapping[str, str]) -> tuple[Secret | None, str, str | None]:
    """(key, where it comes from, problem or None)."""
    if entry.api_key_env and entry.api_key_file:
        return None, "", "set api_key_env or api_key_file, not both"
    key_env = entry.api_key_env or (
        None if entry.api_key_file else DEFAULT_KEY_ENV.get(entry.provider)
    )
    if entry.api_key_file is not None:
        source = f"file {entry.api_key_file}"
        try:
            value = entry.api_key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            return None, source, f"cannot read api_key_file {entry.api_key_file}: {exc.strerror}"
        if not value:
            return None, source, f"api_key_file {entry.api_key_file} is empty"
        return Secret(value), source, None
    if key_env is None:
        return None, "no key", None  # an OpenAI-compatible server without authentication
    source = f"${key_env}"
    value = env.get(key_env, "").strip()
    if not value:
        return None, source, f"environment variable {key_env} (its API key) is not set"
    return Secret(value), source, None


def _lookup(entry: _ModelEntry, upstream_model: str, base_url: str) -> PriceLookup | None:
    if entry.price_lookup is False:
        return None
    if entry.price_lookup is not None:
        pl = entry.price_lookup
        return PriceLookup(
            model_ref=pl.model or upstream_model,
            provider_id=pl.provider_id,
            provider_api_url=None if pl.provider_id else pl.provider_api_url,
        )
    if entry.provider is ProviderKind.OPENAI_COMPATIBLE:
        return PriceLookup(model_ref=upstream_model, provider_api_url=base_url)
    return PriceLookup(model_ref=upstream_model, provider_id=entry.provider.value)


def _resolve(
    entry: _ModelEntry, env: Mapping[str, str], problems: list[str]
) -> CatalogModel | None:
    where = f"model {entry.name!r}"
    base_url = entry.base_url or DEFAULT_BASE_URL.get(entry.provider)
    if base_url is None:
        problems.append(f"{where}: base_url is required for provider openai_compatible")
        return None
    upstream_model = entry.upstream_model or entry.name
    key, key_source, key_problem = _read_key(entry, env)
    if key_problem:
        problems.append(f"{where}: {key_problem}")
    try:
        prices = resolve_prices(entry.name, _lookup(entry, upstream_model, base_url), entry.prices)
    except PriceError as exc:
        problems.append(str(exc))
        return None
    if key_problem:
        return None
    context_window = entry.context_window or prices.context_window
    if context_window is None:
        problems.append(f"{where}: context_window is unknown to genai-prices; set it")
        return None
    # Unset: 1024, or half the window for a model with a small one.
    default_max_tokens = entry.default_max_tokens or max(
        1, min(DEFAULT_MAX_TOKENS, context_window // 2)
    )
    if default_max_tokens >= context_window:
        problems.append(
            f"{where}: default_max_tokens {default_max_tokens} does not fit its "
            f"context_window of {context_window} tokens"
        )
        return None
    return CatalogModel(
        name=entry.name,
        provider=entry.provider,
        provider_name=entry.provider_name or entry.provider.value,
        upstream_model=upstream_model,
        base_url=base_url,
        api_key=key,
        key_source=key_source,
        prices=prices,
        context_window=context_window,
        default_max_tokens=default_max_tokens,
    )


def parse_catalog(document: Any, env: Mapping[str, str], *, source: str = "(inline)") -> Catalog:
    """Validate a parsed catalog document; raises `CatalogError` listing every problem."""
    try:
        spec = _CatalogFile.model_validate(document)
    except ValidationError as exc:
        raise CatalogError(
            source,
            [
                f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
                for err in exc.errors()
            ],
        ) from None
    problems: list[str] = []
    models: dict[str, CatalogModel] = {}
    seen: set[str] = set()
    for entry in spec.models:
        if entry.name in seen:
            problems.append(f"model {entry.name!r} is listed twice")
            continue
        seen.add(entry.name)
        resolved = _resolve(entry, env, problems)
        if resolved is not None:
            models[entry.name] = resolved
    names = [e.name for e in spec.models]
    default = spec.default_model or (names[0] if names else "")
    if spec.default_model is not None and spec.default_model not in names:
        problems.append(f"default_model {spec.default_model!r} is not one of the models")
    if problems:
        raise CatalogError(source, problems)
    return Catalog(models=models, default_model=default, source=source)


def load_catalog(path: Path, env: Mapping[str, str] | None = None) -> Catalog:
    """Read and validate the catalog file at `path` (YAML or JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(str(path), [f"not valid YAML/JSON: {exc}"]) from None
    return parse_catalog(document, os.environ if env is None else env, source=str(path))


# Context windows as the providers document them (OpenAI's model pages: 128,000 tokens for
# gpt-4o and gpt-4o-mini; Anthropic's models overview: 200,000 for the Claude 4.5 models, the
# 1M-token window of Sonnet being a beta this proxy does not ask for).
BUILTIN_MODELS: tuple[dict[str, Any], ...] = (
    {"name": "gpt-4o-mini", "provider": "openai", "context_window": 128_000},
    {"name": "gpt-4o", "provider": "openai", "context_window": 128_000},
    {"name": "claude-haiku-4-5", "provider": "anthropic", "context_window": 200_000},
    {"name": "claude-sonnet-4-5", "provider": "anthropic", "context_window": 200_000},
)


def builtin_catalog(env: Mapping[str, str] | None = None) -> Catalog:
    """The built-in catalog, holding only the models whose provider's key is set."""
    env = os.environ if env is None else env
    present = [
        m
        for m in BUILTIN_MODELS
        if env.get(DEFAULT_KEY_ENV[ProviderKind(m["provider"])], "").strip()
    ]
    if not present:
        raise CatalogError(
            "(built-in)",
            [
                "no model available: set SWITCHYARD_FRONTIER_PROXY_CATALOG to a catalog file, "
                "or OPENAI_API_KEY and/or ANTHROPIC_API_KEY for the built-in models"
            ],
        )
    return parse_catalog({"models": present}, env, source="(built-in)")
