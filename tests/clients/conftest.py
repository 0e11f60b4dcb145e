"""The live stack every client test calls (started once per session; see clients_stack.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clients_stack import SwitchyardStack


@pytest.fixture(scope="session")
def switchyard_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchyardStack]:
    stack = SwitchyardStack(workdir=tmp_path_factory.mktemp("switchyard-stack"))
    with stack.running():
        yield stack
