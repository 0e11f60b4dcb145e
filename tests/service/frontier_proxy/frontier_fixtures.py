"""Helpers for the frontier proxy's service tests: the stand-in catalog and message builders."""

from __future__ import annotations

from typing import Any

from support.frontier_standin import FrontierStandin

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.frontier_proxy.catalog import Catalog, parse_catalog

OPENAI_KEY_ENV = "STANDIN_OPENAI_KEY"
ANTHROPIC_KEY_ENV = "STANDIN_ANTHROPIC_KEY"
BAD_KEY = "sk-wrong-key-that-must-never-leak-42"


def standin_catalog(
    standin: FrontierStandin, extra_models: tuple[dict[str, Any], ...] = ()
) -> Catalog:
    env = {
        OPENAI_KEY_ENV: standin.openai_key,
        ANTHROPIC_KEY_ENV: standin.anthropic_key,
        "STANDIN_BAD_KEY": BAD_KEY,
    }
    document: dict[str, Any] = {
        "default_model": "gpt-4o",
        "models": [
            {
                "name": "gpt-4o",
                "provider": "openai",
                "base_url": standin.openai_base_url,
                "api_key_env": OPENAI_KEY_ENV,
            },
            {
                "name": "claude-haiku-4-5",
                "provider": "anthropic",
                "base_url": standin.anthropic_base_url,
                "api_key_env": ANTHROPIC_KEY_ENV,
            },
            {
                "name": "compat-reasoner",
                "provider": "openai_compatible",
                "provider_name": "vllm",
                "upstream_model": "my-org/reasoner-7b",
                "base_url": standin.openai_base_url,
                "api_key_env": OPENAI_KEY_ENV,
                "price_lookup": False,
                "context_window": 32768,
                "default_max_tokens": 512,
                "prices": {
                    "input_usd_per_mtok": "0.2",
                    "output_usd_per_mtok": "0.8",
                    "cached_input_usd_per_mtok": "0.05",
                    "reasoning_usd_per_mtok": "1.6",
                },
            },
            {
                "name": "gone-model",
                "provider": "openai",
                "upstream_model": "missing-model-x",
                "base_url": standin.openai_base_url,
                "api_key_env": OPENAI_KEY_ENV,
                "price_lookup": {"provider_id": "openai", "model": "gpt-4o"},
            },
            {
                "name": "gpt-4o-badkey",
                "provider": "openai",
                "upstream_model": "gpt-4o",
                # A different base URL (same server) so its failures do not touch gpt-4o's breaker.
                "base_url": standin.url + "/second/openai/v1",
                "api_key_env": "STANDIN_BAD_KEY",
            },
            *extra_models,
        ],
    }
    return parse_catalog(document, env, source="(test)")


def user(text: str, *, system: str | None = None) -> list[pb.ChatMessage]:
    turns = [pb.ChatMessage(role=pb.ROLE_SYSTEM, content=system)] if system else []
    turns.append(pb.ChatMessage(role=pb.ROLE_USER, content=text))
    return turns
