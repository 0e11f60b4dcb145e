"""`switchyard-frontier-proxy`: serve `InferenceService` over frontier APIs until SIGTERM."""

from __future__ import annotations

import sys

from switchyard.frontier_proxy.service import build_definition
from switchyard.frontier_proxy.settings import FrontierProxySettings
from switchyard.runtime.server import run_service

__all__ = ["main"]


SUMMARY = (
    "The frontier proxy: switchyard.inference.v1.InferenceService over OpenAI, Anthropic and "
    "OpenAI-compatible APIs, priced exactly, with retries and circuit breakers. Keys come from "
    "the environment variables the catalog names (OPENAI_API_KEY, ANTHROPIC_API_KEY by default; "
    "docs/services/frontier-proxy.md)."
)


def main(argv: list[str] | None = None) -> int:
    return run_service(
        "switchyard-frontier-proxy",
        FrontierProxySettings,
        build_definition,
        argv=argv,
        summary=SUMMARY,
    )


if __name__ == "__main__":
    sys.exit(main())
