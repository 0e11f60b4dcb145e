"""The service images' Dockerfiles, checked without a Docker engine: read with buildkit's own
parser and linted with hadolint; their structure (multi-stage, non-root, gRPC health check, the
right console script, the locked install); the health probe against a real gRPC health server;
and (slow) each image's install steps run in a clean virtual environment, listing exactly what
the image holds."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from deploy_images import (
    DOCKER,
    IMAGES,
    NOWHERE,
    ROOT,
    Stage,
    build_stage,
    dockerfile_path,
    installed_distributions,
    others_heavy,
    pyproject,
    read_lock,
    stages,
)
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

PROBE = DOCKER / "grpc_health_probe.py"
HADOLINT = Path(sys.executable).parent / "hadolint"
PIP = "/opt/switchyard/bin/pip"
FINAL_STAGES = {"runtime", "cpu", "gpu"}


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_image_is_multi_stage_non_root_and_health_checked(image: str) -> None:
    spec = IMAGES[image]
    found = stages(image)
    by_name = {s.name: s for s in found}
    final_stages = [s for s in found if s.name in FINAL_STAGES]
    assert len(found) >= 2 and final_stages, [s.name for s in found]

    def inherited(stage: Stage, cmd: str) -> list[str]:
        parent = by_name.get(stage.base)
        return (inherited(parent, cmd) if parent else []) + stage.values(cmd)

    for stage in final_stages:
        users = inherited(stage, "USER")
        assert users and users[-1].split(":")[0] not in {"0", "root"}, stage.name
        # The runtime stage copies the environment, never builds it: no pip there.
        assert not any("pip install" in a for a in inherited(stage, "RUN")), stage.name
        copies = [c for c in stage.instructions if c.cmd == "COPY"]
        assert any(f.startswith("--from=build") for c in copies for f in c.flags), stage.name
        (healthcheck,) = inherited(stage, "HEALTHCHECK")
        assert healthcheck == f"CMD grpc-health-probe --address 127.0.0.1:{spec.port}"
        assert inherited(stage, "ENTRYPOINT")[-1] == spec.script
        assert str(spec.port) in inherited(stage, "EXPOSE")
    assert spec.script in pyproject(spec.folder)["project"]["scripts"]


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_build_installs_the_lock_with_hashes_then_its_own_distributions_only(image: str) -> None:
    spec = IMAGES[image]
    build = build_stage(image)
    lock = f"./{spec.folder}/requirements.lock"
    assert build.values("COPY") == [
        f"{spec.folder}/requirements.lock {lock}",
        "services/api ./services/api",
        "services/runtime ./services/runtime",
        f"{spec.folder} ./{spec.folder}",
    ]
    installs = [run for run in build.values("RUN") if "pip" in run]
    assert installs == [
        f"{PIP} install --require-hashes -r {lock}",
        f"{PIP} install --no-deps --no-build-isolation ./services/api ./services/runtime "
        f"./{spec.folder} && {PIP} check",
    ]
    # No other stage installs a switchyard distribution or another lock.
    for stage in stages(image):
        if stage.name != build.name:
            assert not any("./services/" in run for run in stage.values("RUN")), stage.name


def test_each_image_sends_only_its_own_files() -> None:
    for image, spec in IMAGES.items():
        ignore = (DOCKER / f"{image}.Dockerfile.dockerignore").read_text().splitlines()
        assert ignore[ignore.index("*")] == "*"  # everything excluded, then re-included
        assert "!deploy/docker/grpc_health_probe.py" in ignore
        included = {line for line in ignore if line.startswith("!services/")}
        assert included == {"!services/api/", "!services/runtime/", f"!{spec.folder}/"}


def _hadolint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hadolint_finds_nothing_in_any_dockerfile() -> None:
    dockerfiles = sorted(DOCKER.glob("*.Dockerfile"))
    assert {p.name for p in dockerfiles} == {f"{image}.Dockerfile" for image in IMAGES}
    result = _hadolint(*dockerfiles)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "broken.Dockerfile"
    text = dockerfile_path("router").read_text()
    # An unpinned install and a root final stage.
    broken.write_text(
        text.replace("USER 10001:10001", "USER root").replace(
            "RUN python -m venv /opt/switchyard",
            "RUN python -m venv /opt/switchyard && pip install requests",
        )
    )
    result = _hadolint(broken)
    assert result.returncode != 0
    assert {"DL3002", "DL3013"} <= set(re.findall(r"DL\d{4}", result.stdout)), result.stdout


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


def _run_build_stage(image: str, src: Path, venv: Path) -> None:
    """The build stage's COPY and RUN steps in order, with /src and /opt/switchyard moved under
    the test's folder (its ENV is not applied: pip's cache stays on, for speed)."""
    src.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    for instruction in build_stage(image).instructions:
        if instruction.cmd == "COPY":
            assert not instruction.flags, instruction.original
            *sources, dest = instruction.value
            for source in sources:
                origin, target = ROOT / source, src / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                if origin.is_dir():
                    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
                    shutil.copytree(origin, target, ignore=ignore, dirs_exist_ok=True)
                else:
                    shutil.copy2(origin, target)
        elif instruction.cmd == "RUN":
            (command,) = instruction.value
            command = command.replace("/opt/switchyard", str(venv))
            command = re.sub(r"^python\b", sys.executable, command)
            result = subprocess.run(
                command, shell=True, cwd=src, env=env, capture_output=True, text=True, timeout=840
            )
            assert result.returncode == 0, (
                f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )


def _site_packages(venv: Path) -> Path:
    (site,) = (venv / "lib").glob("python3*/site-packages")
    return site


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("image", sorted(IMAGES))
def test_dockerfile_install_steps_in_a_clean_venv(image: str, tmp_path: Path) -> None:
    """The image's Python environment is exactly its lock plus switchyard-api, -runtime and the
    service (local-inference: before the engine, which docs/deployment.md says is not locked)."""
    spec = IMAGES[image]
    venv = tmp_path / "venv"
    _run_build_stage(image, tmp_path / "src", venv)

    locked = {e.name for e in read_lock(spec.lock.read_text()) if e.applies()}
    ours = {"switchyard-api", "switchyard-runtime", spec.distribution}
    installed = installed_distributions(venv)
    # What `python -m venv` itself puts there on 3.11.
    assert installed - {"pip", "setuptools"} == locked | ours, installed ^ (locked | ours)
    site = _site_packages(venv) / "switchyard"
    assert not (site / "training").exists()
    forbidden = others_heavy(image) | NOWHERE
    assert not installed & forbidden, installed & forbidden
    model = site / "classifier" / "shipped_model" / "classifier.onnx"
    assert model.is_file() == (image == "classifier"), model
    assert sorted(p.name for p in site.iterdir() if p.name != "__pycache__") == sorted(
        ["api", "runtime", image.replace("-", "_")]
    )
    module = pyproject(spec.folder)["project"]["scripts"][spec.script].split(":")[0]
    imported = subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import {module}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
