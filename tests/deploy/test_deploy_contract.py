"""`buf breaking`: the contract in protos/ must not break callers built against the last release.

The baseline is the newest `v*` release tag; until one exists (none yet) it is the `main`
branch (meaningful on a feature branch; on main itself it compares main with itself). A second
test proves the check catches a breaking change, so it cannot pass vacuously.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF = Path(sys.executable).parent / "buf"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout


def baseline() -> str:
    tags = [t for t in _git("tag", "--list", "v*", "--sort=-v:refname").split() if t]
    if tags:
        return f".git#tag={tags[0]},subdir=protos"
    return ".git#branch=main,subdir=protos"


def _buf(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUF), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_contract_has_no_breaking_change_since_the_last_release() -> None:
    against = baseline()
    if "branch=main" in against and "main" not in _git("branch", "--list", "main"):
        pytest.skip("no release tag and no local main branch to compare with")
    result = _buf("breaking", "protos", "--against", against)
    assert result.returncode == 0, f"against {against}:\n{result.stdout}{result.stderr}"


def test_buf_breaking_catches_a_removed_field(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    shutil.copytree(ROOT / "protos", before)
    shutil.copytree(ROOT / "protos", after)
    router = after / "switchyard" / "router" / "v1" / "router.proto"
    text, count = re.subn(r"\n\s*string reason_detail = 6;", "", router.read_text())
    assert count == 1
    router.write_text(text)
    result = _buf("breaking", str(after), "--against", str(before))
    assert result.returncode != 0
    assert "reason_detail" in result.stdout + result.stderr
    unchanged = _buf("breaking", str(before), "--against", str(before))
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
