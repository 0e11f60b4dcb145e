"""A valid router configuration for unit tests (plain data, tweak per test)."""

from __future__ import annotations

import copy
from typing import Any

from switchyard.router.config import RouterConfig, hash_api_key, parse_config

BASE: dict[str, Any] = {
    "classifier": {"address": "localhost:1", "timeout_ms": 200},
    "backends": {
        "local-inference": {"address": "localhost:2", "kind": "LOCAL"},
        "frontier-proxy": {"address": "localhost:3", "kind": "FRONTIER"},
    },
    "targets": {
        "local-general": {
            "backend": "local-inference",
            "model": "smol",
            "pricing": {
                "input_usd_per_million_tokens": 0.01,
                "output_usd_per_million_tokens": 0.02,
            },
        },
        "local-code": {"backend": "local-inference", "model": "smol-coder"},
        "frontier-general": {
            "backend": "frontier-proxy",
            "model": "gpt-4o-mini",
            "pricing": {"input_usd_per_million_tokens": 0.15, "output_usd_per_million_tokens": 0.6},
        },
        "frontier-strong": {
            "backend": "frontier-proxy",
            "model": "gpt-4o",
            "pricing": {"input_usd_per_million_tokens": 2.5, "output_usd_per_million_tokens": 10.0},
        },
    },
    "routing": {
        "escalation_threshold": 0.5,
        "local_target": "local-general",
        "frontier_target": "frontier-general",
        "default_target": "local-general",
        "fallbacks": {
            "local-general": ["frontier-general"],
            "local-code": ["local-general", "frontier-general"],
            "frontier-general": ["local-general"],
            "frontier-strong": ["frontier-general", "local-general"],
        },
        "task_rules": {
            "MATH": {"target": "frontier-strong"},
            "CLASSIFICATION": {"target": "local-general"},
            "CODE_GENERATION": {
                "local_target": "local-code",
                "frontier_target": "frontier-strong",
                "escalation_threshold": 0.3,
            },
        },
    },
    "tenants": {
        "acme": {
            "api_key_sha256": [hash_api_key("acme-key")],
            "budget": {"daily_soft_usd": 1.0, "daily_hard_usd": 2.0},
        },
        "globex": {"api_key_sha256": [hash_api_key("globex-key")]},
    },
}


def raw(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def config(**changes: Any) -> RouterConfig:
    return parse_config(raw(**changes))
