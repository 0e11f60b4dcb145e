"""The PostgreSQL test fixture fails loudly, naming the set-up step, when PostgreSQL is absent."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.postgres import PostgresServer, find_postgres_bin


def test_missing_binaries_fail_and_name_scripts_setup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SWITCHYARD_TEST_PG_BIN", str(tmp_path / "no-postgres-here"))
    assert find_postgres_bin() is None
    with pytest.raises(pytest.fail.Exception, match=r"Run \./scripts/setup"):
        PostgresServer.start()


def test_an_override_directory_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("initdb", "pg_ctl"):
        (tmp_path / name).write_text("#!/bin/sh\n")
    monkeypatch.setenv("SWITCHYARD_TEST_PG_BIN", str(tmp_path))
    assert find_postgres_bin() == tmp_path
