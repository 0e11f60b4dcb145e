"""Ledger fixtures: every backend test runs against SQLite and a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.postgres import PostgresServer, postgres_server  # noqa: F401  (session fixture)

from switchyard.router.ledger import CostLedger, open_ledger


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger location: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/nested/dir/ledger.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


@pytest.fixture
async def ledger(ledger_url: str) -> AsyncIterator[CostLedger]:
    opened = await open_ledger(ledger_url)
    try:
        yield opened
    finally:
        await opened.close()
