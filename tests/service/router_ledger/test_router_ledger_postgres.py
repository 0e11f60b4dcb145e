"""PostgreSQL-only behaviour: several router replicas, agreement with SQLite, connection errors."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from router_ledger_data import T0, WINDOW_END, WINDOW_START, dataset, make_record
from support.postgres import PostgresServer

from switchyard.router.ledger import Grouping, LedgerUnavailable, open_ledger
from switchyard.router.ledger.schema import SCHEMA_VERSION

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("grouping", list(Grouping), ids=lambda g: g.name)
async def test_sqlite_and_postgresql_report_identical_numbers(
    postgres_server: PostgresServer, tmp_path: Path, grouping: Grouping
) -> None:
    """The same records give the same report, field for field, percentiles included."""
    records = dataset(n=300, seed=11)
    sqlite = await open_ledger(f"sqlite://{tmp_path}/ledger.db")
    postgres = await open_ledger(postgres_server.create_database())
    try:
        for ledger in (sqlite, postgres):
            await asyncio.gather(*(ledger.record(r) for r in records))
        for tenant in (None, "acme"):
            from_sqlite = await sqlite.report(WINDOW_START, WINDOW_END, grouping, tenant)
            from_postgres = await postgres.report(WINDOW_START, WINDOW_END, grouping, tenant)
            assert from_sqlite.rows, "the window holds requests"
            assert from_sqlite == from_postgres
        assert await sqlite.spend_since("initech", T0) == await postgres.spend_since("initech", T0)
        assert await sqlite.records(T0, WINDOW_END) == await postgres.records(T0, WINDOW_END)
    finally:
        await sqlite.close()
        await postgres.close()


async def test_two_replicas_open_and_write_concurrently(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.create_database()
    # Both start at once on an empty database: the migration runs once, under its lock.
    first, second = await asyncio.gather(
        open_ledger(dsn, pool_size=4), open_ledger(dsn, pool_size=4)
    )
    try:
        per_replica = 300
        writes = [
            replica.record(make_record(f"{name}-{i}", time=T0 + timedelta(milliseconds=i)))
            for name, replica in (("a", first), ("b", second))
            for i in range(per_replica)
        ]
        await asyncio.gather(*writes)
        # The same request id from the other replica is refused, not duplicated.
        with pytest.raises(ValueError, match="already in the ledger"):
            await second.record(make_record("a-0", time=T0))
        for replica in (first, second):
            report = await replica.report(T0, T0 + timedelta(hours=1), Grouping.TENANT)
            assert report.total.requests == 2 * per_replica
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            cursor = await conn.execute("SELECT count(*) FROM schema_migrations")
            assert await cursor.fetchone() == (SCHEMA_VERSION,)  # each migration applied once
            cursor = await conn.execute("SELECT count(*) FROM attempts")
            assert await cursor.fetchone() == (2 * per_replica,)
    finally:
        await first.close()
        await second.close()


async def test_wrong_password_is_unavailable_and_the_password_stays_secret(
    postgres_server: PostgresServer,
) -> None:
    secret = "Hunter2-not-the-password"
    with pytest.raises(LedgerUnavailable) as caught:
        await open_ledger(postgres_server.dsn(password=secret))
    message = str(caught.value)
    assert "password authentication failed" in message
    assert secret not in message and postgres_server.password not in message
    assert f"{postgres_server.host}:{postgres_server.port}" in message


async def test_unreachable_server_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    with pytest.raises(LedgerUnavailable, match="cannot connect"):
        await open_ledger(f"postgresql://u:pw@127.0.0.1:{port}/db", connect_timeout_s=2)


async def test_a_dropped_database_makes_calls_unavailable(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.create_database()
    ledger = await open_ledger(dsn, pool_size=2, connect_timeout_s=2)
    try:
        await ledger.record(make_record("before", time=T0))
        postgres_server.drop_database(dsn.rsplit("/", 1)[1])
        with pytest.raises(LedgerUnavailable) as caught:
            await ledger.spend_since("acme", T0)
        assert postgres_server.password not in str(caught.value)
        with pytest.raises(LedgerUnavailable):
            await ledger.record(dataclasses.replace(make_record("after", time=T0)))
    finally:
        await ledger.close()
