"""The router's three configuration files say the same thing except where their place makes
them differ.

- config/router.yaml: the annotated example a checkout runs (docs/services/router.md);
- deploy/compose/router.yaml: docker-compose's (mounted into the router container);
- deploy/k8s/base/config/router.yaml: Kubernetes' (the ConfigMap switchyard-router-config).

ALLOWED lists the places that may differ and why; everything else (targets, prices, the routing
policy, task rules, fallbacks, tenants) must be equal, so a change to one is made in all three.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from switchyard.router.config import load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "router.yaml"
DEPLOYED = {
    "compose": ROOT / "deploy" / "compose" / "router.yaml",
    "k8s": ROOT / "deploy" / "k8s" / "base" / "config" / "router.yaml",
}
ConfigPath = tuple[str, ...]
ALLOWED: dict[ConfigPath, str] = {
    ("classifier", "address"): "localhost in a checkout; the compose service or k8s Service name",
    ("backends", "local-inference", "address"): "as the classifier's",
    ("backends", "frontier-proxy", "address"): "as the classifier's",
    ("targets", "local-general", "model"): (
        "the example names the CPU model scripts/setup prepares; a deployment asks the "
        "local-inference service for its own model (GPU or CPU image)"
    ),
    ("ledger", "url"): (
        "SQLite under the checkout's var/; SQLite in the compose router's volume; PostgreSQL "
        "shared by the k8s router replicas"
    ),
}


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def differences(a: Any, b: Any, path: ConfigPath = ()) -> set[ConfigPath]:
    """The paths of the leaves (or whole subtrees, where one side lacks them) that differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        found: set[ConfigPath] = set()
        for key in a.keys() | b.keys():
            if key not in a or key not in b:
                found.add((*path, str(key)))
            else:
                found |= differences(a[key], b[key], (*path, str(key)))
        return found
    return set() if a == b else {path}


@pytest.mark.parametrize("path", [EXAMPLE, *DEPLOYED.values()], ids=lambda p: p.parent.name)
def test_every_router_configuration_is_valid(path: Path) -> None:
    config = load_config(path)
    assert config.routing.default_target in config.targets


@pytest.mark.parametrize("where", sorted(DEPLOYED))
def test_deployed_configuration_differs_from_the_example_only_where_it_must(where: str) -> None:
    unexpected = differences(_load(EXAMPLE), _load(DEPLOYED[where])) - ALLOWED.keys()
    assert not unexpected, (
        f"{DEPLOYED[where].relative_to(ROOT)} differs from config/router.yaml at "
        f"{sorted(unexpected)}: make the change in all three files (or, if this place must "
        "differ, add it to ALLOWED with the reason)"
    )


def test_the_comparison_catches_a_change_made_in_one_file_only() -> None:
    example = _load(EXAMPLE)
    changed = copy.deepcopy(example)
    changed["routing"]["escalation_threshold"] = 0.9
    changed["targets"]["frontier-strong"]["pricing"]["output_usd_per_million_tokens"] = 1.0
    del changed["routing"]["fallbacks"]
    assert differences(example, changed) == {
        ("routing", "escalation_threshold"),
        ("targets", "frontier-strong", "pricing", "output_usd_per_million_tokens"),
        ("routing", "fallbacks"),
    }


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_example_keeps_its_ledger_in_an_ignored_state_directory() -> None:
    url = load_config(EXAMPLE).ledger.url
    assert url.startswith("sqlite:var/"), url
    ledger = url.removeprefix("sqlite:")
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    # The ledger, SQLite's side files and the router's default spill journal (its working
    # directory) are all ignored.
    for path in (ledger, f"{ledger}-wal", "switchyard-ledger-spill.jsonl"):
        ignored = subprocess.run(
            ["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, timeout=30
        )
        assert ignored.returncode == 0, f"{path} is not ignored by .gitignore"
