"""What the docs quote, checked against what runs: grpcurl's listing of the router
(docs/grpcurl.md, with the real grpcurl binary the dev group installs), the ledger's columns
(docs/services/cost-ledger.md, against a real SQLite ledger), the demo's machine rate
(docs/services/router.md)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from switchyard.router.ledger import open_ledger
from switchyard.router.service import RouterResources, build_definition
from switchyard.router.settings import RouterSettings
from switchyard.runtime.server import RunningServer, start_server
from switchyard.suite.plan import LOCAL_MACHINE_USD_PER_HOUR

DOCS = Path(__file__).resolve().parents[3] / "docs"
GRPCURL = Path(sys.executable).parent / "grpcurl"


def _block_after(text: str, heading: str) -> str:
    """The first fenced block after `heading`."""
    rest = text[text.index(heading) :]
    return rest.split("```", 2)[1]


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[RunningServer[RouterResources]]:
    config = {
        "classifier": {"address": "127.0.0.1:9", "timeout_ms": 100},
        "backends": {
            "local-inference": {"address": "127.0.0.1:9", "kind": "LOCAL"},
            "frontier-proxy": {"address": "127.0.0.1:9", "kind": "FRONTIER"},
        },
        "targets": {
            "local-general": {"backend": "local-inference"},
            "frontier-general": {"backend": "frontier-proxy", "model": "gpt-4o-mini"},
        },
        "routing": {
            "escalation_threshold": 0.5,
            "local_target": "local-general",
            "frontier_target": "frontier-general",
            "default_target": "local-general",
        },
        "tenants": {},
        "ledger": {"url": f"sqlite:{tmp_path / 'ledger.db'}"},
    }
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(config))
    settings = RouterSettings(
        host="127.0.0.1", config=path, ledger_journal_dir=tmp_path / "journal", http_enabled=False
    )
    async with start_server(build_definition(settings), port=0) as running:
        yield running


async def test_grpcurl_list_prints_what_the_doc_shows(router: RunningServer) -> None:
    block = _block_after((DOCS / "grpcurl.md").read_text(), "## List and describe")
    lines = block.splitlines()
    start = lines.index("grpcurl -plaintext localhost:50051 list") + 1
    shown = []
    for line in lines[start:]:
        if not line.startswith("# "):
            break
        shown.append(line[2:])
    listed = await asyncio.to_thread(
        subprocess.run,
        [str(GRPCURL), "-plaintext", router.address, "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == shown


async def test_ledger_columns_are_what_the_doc_names(tmp_path: Path) -> None:
    ledger = await open_ledger(f"sqlite:{tmp_path / 'ledger.db'}")
    await ledger.close()
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        columns = {
            table: [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            for table in ("requests", "attempts")
        }
        indexes = {
            row[0] for row in db.execute("SELECT sql FROM sqlite_master WHERE sql LIKE '%INDEX%'")
        }
    block = _block_after((DOCS / "services" / "cost-ledger.md").read_text(), "## Tables")
    for table, names in columns.items():
        match = re.search(rf"^{table}\((.*?)\)$", block, re.S | re.M)
        assert match, table
        listed = re.sub(r"PK\([^)]*\)", "", re.sub(r"\s+", " ", match.group(1)))
        documented = [part.split()[0] for part in listed.split(", ") if part.strip()]
        assert documented == names, table
    index_line = next(line for line in block.splitlines() if line.startswith("indexes:"))
    for column in re.findall(r"requests\(([^)]*)\)", index_line):
        for name in column.split(", "):
            assert any(name in sql for sql in indexes), name


def test_the_demo_machine_rate_in_the_router_doc_is_the_plan_s() -> None:
    text = (DOCS / "services" / "router.md").read_text()
    assert f"${LOCAL_MACHINE_USD_PER_HOUR:.2f}/h" in text
