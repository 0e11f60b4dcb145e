"""Where the ledger lives: a URL naming the backend, parsed and opened here.

- `sqlite:///var/lib/switchyard/ledger.db`: an absolute path (three slashes, then the path's own).
- `sqlite:ledger/ledger.db`: a path relative to the working directory; `~` is expanded.
- `?busy_timeout_s=5` after a SQLite path: how long a write or read waits on another
  process's lock before the ledger counts as unavailable (default 30).
- `postgresql://user:password@host:5432/dbname` (or `postgres://`, any libpq URL or its query
  parameters such as `?sslmode=require`).

An in-memory SQLite database is refused: the ledger must be durable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote

from switchyard.router.ledger.interface import CostLedger
from switchyard.router.ledger.postgres import PostgresLedger, describe_dsn
from switchyard.router.ledger.sqlite import SqliteLedger

__all__ = ["LedgerLocation", "open_ledger", "parse_ledger_url"]


@dataclass(frozen=True, slots=True)
class LedgerLocation:
    """A parsed ledger URL: `backend` is "sqlite" (with `path`) or "postgresql" (with `dsn`)."""

    backend: str
    path: Path | None = None
    dsn: str | None = None
    busy_timeout_s: float = 30.0  # SQLite only

    def describe(self) -> str:
        """The location for logs and errors (no password)."""
        if self.path is not None:
            return f"sqlite:{self.path}"
        return f"postgresql://{describe_dsn(self.dsn or '')}"


def parse_ledger_url(url: str) -> LedgerLocation:
    """Parse a ledger URL; ValueError says what is wrong (without echoing a password)."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("the ledger URL is empty")
    url = url.strip()
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(
            "the ledger URL needs a scheme: sqlite:///absolute/path.db, sqlite:relative/path.db "
            "or postgresql://user@host/dbname"
        )
    if scheme == "sqlite":
        if rest.startswith("//"):
            authority, _, path = rest[2:].partition("/")
            if authority:
                raise ValueError(
                    "a sqlite ledger URL has no host: use sqlite:///absolute/path.db or "
                    "sqlite:relative/path.db"
                )
            path = "/" + path
        else:
            path = rest
        path, _, query = path.partition("?")
        path = unquote(path)
        if path in ("", "/") or path.endswith("/"):
            raise ValueError("the sqlite ledger URL must name a file")
        if ":memory:" in path:
            raise ValueError("an in-memory sqlite ledger is not durable; name a file")
        return LedgerLocation(
            backend="sqlite", path=Path(path).expanduser(), busy_timeout_s=_busy_timeout(query)
        )
    if scheme in ("postgresql", "postgres"):
        if not rest.startswith("//"):
            raise ValueError("a PostgreSQL ledger URL looks like postgresql://user@host:5432/db")
        return LedgerLocation(backend="postgresql", dsn=url)
    raise ValueError(f"unsupported ledger URL scheme {scheme!r}: use sqlite: or postgresql:")


def _busy_timeout(query: str) -> float:
    seconds = 30.0
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name != "busy_timeout_s":
            raise ValueError(f"unknown sqlite ledger URL option {name!r} (known: busy_timeout_s)")
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= 600:
            raise ValueError("busy_timeout_s must be a number of seconds in (0, 600]")
    return seconds


async def open_ledger(
    url: str,
    *,
    pool_size: int = 10,
    connect_timeout_s: float = 10.0,
    sqlite_max_batch: int = 256,
) -> CostLedger:
    """Open the ledger at `url`, creating its schema (and, for SQLite, its file and directories).

    Raises ValueError for a malformed URL, `LedgerUnavailable` when the database cannot be
    reached, and `LedgerError` when its schema is newer than this code.
    """
    location = parse_ledger_url(url)
    if location.backend == "sqlite":
        assert location.path is not None
        return await SqliteLedger.open(
            location.path, max_batch=sqlite_max_batch, busy_timeout_s=location.busy_timeout_s
        )
    assert location.dsn is not None
    return await PostgresLedger.open(
        location.dsn, pool_size=pool_size, connect_timeout_s=connect_timeout_s
    )
