"""Upstream endpoints: one pooled httpx client and one circuit breaker per base URL.

Why httpx rather than the providers' SDKs: one HTTP layer for all three provider kinds (the
OpenAI SDK covers OpenAI-compatible servers, but Anthropic would need a second SDK with its own
retry and timeout machinery); the SDKs retry on their own, which would hide attempts from our
retry policy, circuit breaker and spans and could retry after bytes reached the caller; and
they would parse every chunk into pydantic models we would only convert again. httpx gives
connection pooling, per-request timeouts and streaming bodies, and its `MockTransport` /
transport injection keeps the HTTP layer swappable in tests and benchmarks.

The clients keep no cookies (`NoCookies`): one client serves every tenant's calls to its
upstream, so a cookie one answer set would ride on other tenants' requests. The provider APIs
authenticate by key, not by cookie.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.cookiejar import Cookie, CookieJar
from typing import Any

import httpx

from switchyard.frontier_proxy.catalog import CatalogModel
from switchyard.frontier_proxy.resilience.breaker import CircuitBreaker
from switchyard.frontier_proxy.transport import pooled_transport

__all__ = ["NoCookies", "Upstream", "open_upstreams"]


class NoCookies(CookieJar):
    """A cookie jar that stores nothing and sends nothing (see the module docstring)."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Cookie) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Upstream:
    """One upstream API endpoint: every catalog model with this base URL shares it."""

    base_url: str
    client: httpx.AsyncClient
    breaker: CircuitBreaker
    _urls: dict[str, httpx.URL] = field(default_factory=dict, init=False, repr=False, compare=False)

    def url(self, path: str) -> httpx.URL:
        """`path` under the base URL, as httpx merges a relative URL with `client.base_url`
        (whose path always ends in "/"), parsed once per path: an absolute URL spares httpx
        two parses per request."""
        url = self._urls.get(path)
        if url is None:
            base = self.client.base_url
            raw_path = base.raw_path + httpx.URL(path).raw_path.lstrip(b"/")
            url = self._urls[path] = base.copy_with(raw_path=raw_path)
        return url


@asynccontextmanager
async def open_upstreams(
    models: Iterable[CatalogModel],
    *,
    max_connections: int,
    connect_timeout_s: float,
    breaker_failure_threshold: int,
    breaker_reset_s: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Mapping[str, Upstream]]:
    """Open one client per distinct base URL; close them all on exit."""
    upstreams: dict[str, Upstream] = {}
    try:
        for model in models:
            if model.base_url in upstreams:
                continue
            limits = httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=30.0,
            )
            client = httpx.AsyncClient(
                base_url=model.base_url,
                limits=limits,
                timeout=httpx.Timeout(connect_timeout_s, read=None, write=None, pool=None),
                # httpx's pool on plain asyncio streams (transport.py: less CPU per chunk).
                transport=transport or pooled_transport(limits),
                follow_redirects=False,
                cookies=NoCookies(),
                trust_env=True,  # honour HTTPS_PROXY / NO_PROXY for egress
            )
            upstreams[model.base_url] = Upstream(
                base_url=model.base_url,
                client=client,
                breaker=CircuitBreaker(breaker_failure_threshold, breaker_reset_s),
            )
        yield upstreams
    finally:
        for upstream in upstreams.values():
            await upstream.client.aclose()
