"""`switchyard-frontier-proxy`: serve `InferenceService` over frontier APIs until SIGTERM."""

from __future__ import annotations

import sys

from switchyard.frontier_proxy.service import SERVICE_NAME, build_definition
from switchyard.frontier_proxy.settings import FrontierProxySettings
from switchyard.runtime.server import run_service

__all__ = ["main"]


def main() -> int:
    return run_service(SERVICE_NAME, FrontierProxySettings, build_definition)


if __name__ == "__main__":
    sys.exit(main())
