"""`switchyard-router`: serve RouterService and CostService until SIGTERM / SIGINT."""

from __future__ import annotations

import sys

from switchyard.router.service import build_definition
from switchyard.router.settings import RouterSettings
from switchyard.runtime.server import run_service

__all__ = ["main"]


SUMMARY = (
    "The router: classifies each request, applies the routing policy (threshold, task rules, "
    "budgets, fallbacks), calls a backend and records the cost. Serves "
    "switchyard.router.v1.RouterService and switchyard.cost.v1.CostService "
    "(docs/services/router.md)."
)


def main(argv: list[str] | None = None) -> int:
    return run_service(
        "switchyard-router", RouterSettings, build_definition, argv=argv, summary=SUMMARY
    )


if __name__ == "__main__":
    sys.exit(main())
