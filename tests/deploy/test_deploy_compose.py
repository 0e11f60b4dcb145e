"""docker-compose.yml, validated offline against the compose specification (check-jsonschema's
bundled compose-spec schema), and checked for what the deployment promises."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from deploy_images import IMAGES, stages
from deploy_settings import assert_known_settings

from switchyard.router.config import load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
PORTS = {"router": 50051, "classifier": 50052, "frontier-proxy": 50054}
LOCAL = {"local-inference": "gpu", "local-inference-cpu": "cpu"}


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_specification() -> None:
    result = _validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_specification_check_catches_a_mistake(tmp_path: Path, compose: dict) -> None:
    compose = copy.deepcopy(compose)
    compose["services"]["router"]["depends_on"]["classifier"]["condition"] = "service_happy"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(compose))
    result = _validate(broken)
    assert result.returncode != 0
    assert "service_happy" in result.stdout + result.stderr


def test_jaeger_v2_receives_otlp_and_every_service_sends_there(compose: dict) -> None:
    jaeger = compose["services"]["jaeger"]
    assert "jaegertracing/jaeger:2" in jaeger["image"]
    assert {"16686:16686", "4317:4317"} <= set(jaeger["ports"])
    for name in [*PORTS, *LOCAL]:
        env = compose["services"][name]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317", name


def test_services_are_health_checked_over_grpc_and_start_in_order(compose: dict) -> None:
    services = compose["services"]
    for name, port in [*PORTS.items(), *((n, 50053) for n in LOCAL)]:
        test = services[name]["healthcheck"]["test"]
        assert test == ["CMD", "grpc-health-probe", "--address", f"127.0.0.1:{port}"], name
    deps = services["router"]["depends_on"]
    assert deps["classifier"] == {"condition": "service_healthy"}
    for name in (*LOCAL, "frontier-proxy"):
        assert deps[name]["condition"] == "service_healthy"
        assert deps[name]["required"] is False  # only one local-inference profile runs


def test_local_inference_reserves_a_gpu_and_the_cpu_profile_does_not(compose: dict) -> None:
    gpu = compose["services"]["local-inference"]
    assert gpu["profiles"] == ["gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"] and device["count"] == 1
    assert gpu["build"]["target"] == "gpu"
    cpu = compose["services"]["local-inference-cpu"]
    assert cpu["profiles"] == ["cpu"]
    assert "deploy" not in cpu and cpu["build"]["target"] == "cpu"
    assert cpu["networks"]["default"]["aliases"] == ["local-inference"]


def test_router_configuration_is_valid_and_points_at_compose_services(compose: dict) -> None:
    router = compose["services"]["router"]
    source = compose["configs"][router["configs"][0]["source"]]["file"]
    config = load_config(ROOT / source)
    assert router["configs"][0]["target"] == router["environment"]["SWITCHYARD_ROUTER_CONFIG"]
    hosts = set(compose["services"]) | {"local-inference"}
    for address in (config.classifier.address, *(b.address for b in config.backends.values())):
        host, port = address.split(":")
        assert host in hosts, address
    assert config.ledger.url.startswith("sqlite:////var/lib/switchyard/")
    assert "ledger:/var/lib/switchyard" in router["volumes"]


def test_images_are_built_from_their_own_dockerfile(compose: dict) -> None:
    for name in [*PORTS, *LOCAL]:
        build = compose["services"][name]["build"]
        dockerfile = ROOT / build["dockerfile"]
        assert dockerfile.is_file(), dockerfile
        assert dockerfile.name.startswith(name.removesuffix("-cpu"))


def test_build_targets_and_ports_match_the_dockerfiles(compose: dict) -> None:
    for name in [*PORTS, *LOCAL]:
        service = compose["services"][name]
        image = name.removesuffix("-cpu")
        found = {stage.name: stage for stage in stages(image)}
        final = found[service["build"].get("target", list(found)[-1])]
        exposed = {v for stage in found.values() for v in stage.values("EXPOSE")}
        port = service["healthcheck"]["test"][-1].rsplit(":", 1)[1]
        assert port == str(IMAGES[image].port) and exposed == IMAGES[image].exposed, (
            name,
            exposed,
        )
        assert final.name in {"runtime", "cpu", "gpu"}, (name, final.name)
        assert service["image"].startswith(f"switchyard/{image}:"), service["image"]


@pytest.mark.parametrize(
    ("compose_service", "service"),
    [
        ("router", "router"),
        ("classifier", "classifier"),
        ("frontier-proxy", "frontier-proxy"),
        ("local-inference", "local-inference"),
        ("local-inference-cpu", "local-inference"),
    ],
)
def test_environment_names_are_settings_the_services_know(
    compose: dict, compose_service: str, service: str
) -> None:
    assert_known_settings(service, compose["services"][compose_service]["environment"])
