"""`switchyard-router`: serve RouterService and CostService until SIGTERM / SIGINT."""

from __future__ import annotations

import sys

from switchyard.router.service import build_definition
from switchyard.router.settings import RouterSettings
from switchyard.runtime.server import run_service

__all__ = ["main"]


def main() -> int:
    return run_service("switchyard-router", RouterSettings, build_definition)


if __name__ == "__main__":
    sys.exit(main())
