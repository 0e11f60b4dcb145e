"""An upstream's request URL, parsed once per path, is the one httpx would have merged."""

from __future__ import annotations

import httpx
import pytest

from switchyard.frontier_proxy.resilience.breaker import CircuitBreaker
from switchyard.frontier_proxy.upstream import Upstream


@pytest.mark.parametrize(
    "base_url",
    [
        "https://api.openai.com/v1",
        "https://api.anthropic.com",
        "http://127.0.0.1:8000/",
        "https://gateway.example/openai/v1/",
        "https://h.example/a%20b/v1?x=1",
    ],
)
@pytest.mark.parametrize("path", ["/chat/completions", "chat/completions", "/v1/messages"])
async def test_the_cached_url_is_httpx_merge_of_the_relative_path(base_url: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        upstream = Upstream(base_url=base_url, client=client, breaker=CircuitBreaker(5, 30.0))
        merged = client.build_request("POST", path).url
        assert upstream.url(path) == merged
        assert client.build_request("POST", upstream.url(path)).url == merged
        assert upstream.url(path) is upstream.url(path)  # parsed once
