"""`switchyard-router` with its clock pinned: `python pinned_clock_router.py 2026-06-15T12:00:00Z`.

The router's clock dates ledger records, budget periods (day, month), evaluations and report
windows; `build_definition(settings, clock=...)` injects it. A test that depends on a date
(a daily budget must not roll over mid-test at 00:00 UTC) runs the real router process through
this launcher: the clock starts at the given instant and advances with the monotonic clock, so
records keep their order and the day is the one the test chose, at any hour it runs.
Settings come from the environment as for `switchyard-router`.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from functools import partial

from switchyard.router.__main__ import SUMMARY
from switchyard.router.service import build_definition
from switchyard.router.settings import RouterSettings
from switchyard.runtime.server import run_service

__all__ = ["PinnedClock"]


class PinnedClock:
    """`start`, then as many seconds later as have passed on the monotonic clock."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the pinned instant needs a time zone (for example ...Z)")
        self._start = start.astimezone(UTC)
        self._origin = time.monotonic()

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin)


def main() -> int:
    [instant] = sys.argv[1:]
    clock = PinnedClock(datetime.fromisoformat(instant))
    return run_service(
        "switchyard-router",
        RouterSettings,
        partial(build_definition, clock=clock),
        argv=[],
        summary=SUMMARY,
    )


if __name__ == "__main__":
    sys.exit(main())
