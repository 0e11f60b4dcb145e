"""Render a kustomization offline: the subset of kustomize that deploy/k8s uses.

CI has no kustomize binary for sure (`kubectl kustomize` exists on some machines only), so the
tests render base and overlays with this, and compare with `kubectl kustomize` where it exists.
Supported: `resources` (files and directories with a kustomization), `namespace`, `labels`
(pairs, metadata only), `configMapGenerator` (files, with `disableNameSuffixHash: true`),
`images` (newName/newTag), `patches` (strategic-merge files whose kind/name pick the target).
Anything else in a kustomization is an error here, so the subset cannot silently drift from
what the manifests use.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

__all__ = ["KustomizeSubsetError", "render"]

_SUPPORTED = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "configMapGenerator",
    "generatorOptions",
    "images",
    "patches",
}
# Strategic merge: lists merged by these keys; any other list is replaced.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}
_CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding"}


class KustomizeSubsetError(ValueError):
    """The kustomization uses something this subset does not render."""


def _load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _merge(base: Any, patch: Any, key: str | None = None) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = _merge(out[k], v, k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and key in _MERGE_KEYS:
        # As kustomize orders them: the patch's items first (merged with their base item),
        # then the base items the patch does not name.
        merge_key = _MERGE_KEYS[key]
        by_key = {item.get(merge_key): item for item in base}
        named = {item.get(merge_key) for item in patch}
        merged = [
            _merge(by_key[item.get(merge_key)], item)
            if item.get(merge_key) in by_key
            else copy.deepcopy(item)
            for item in patch
        ]
        return merged + [copy.deepcopy(b) for b in base if b.get(merge_key) not in named]
    return copy.deepcopy(patch)


def _pod_spec(resource: dict[str, Any]) -> dict[str, Any] | None:
    spec = resource.get("spec", {})
    if resource.get("kind") in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
        return spec.get("template", {}).get("spec")
    if resource.get("kind") == "Pod":
        return spec
    return None


def _set_image(resource: dict[str, Any], images: list[dict[str, Any]]) -> None:
    pod = _pod_spec(resource)
    if not pod:
        return
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        name, _, tag = container["image"].partition(":")
        for image in images:
            if image["name"] == name:
                new_name = image.get("newName", name)
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def render(directory: Path) -> list[dict[str, Any]]:
    """The resources `kustomize build directory` would print (for the supported subset)."""
    directory = Path(directory)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = sorted(set(kustomization) - _SUPPORTED)
    if unsupported:
        raise KustomizeSubsetError(f"{directory}: unsupported kustomization fields {unsupported}")
    resources: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        resources.extend(render(path) if path.is_dir() else _load_docs(path))

    options = kustomization.get("generatorOptions", {})
    for generator in kustomization.get("configMapGenerator", []):
        if not options.get("disableNameSuffixHash"):
            raise KustomizeSubsetError("configMapGenerator needs disableNameSuffixHash here")
        if set(generator) - {"name", "files"}:
            raise KustomizeSubsetError(f"unsupported configMapGenerator fields in {generator}")
        data = {}
        for item in generator["files"]:
            key, _, source = item.partition("=") if "=" in item else (Path(item).name, "", item)
            data[key] = (directory / source).read_text()
        resources.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )

    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise KustomizeSubsetError(f"only file patches are supported, got {patch}")
        for doc in _load_docs(directory / patch["path"]):
            matches = [
                i
                for i, r in enumerate(resources)
                if r["kind"] == doc["kind"] and r["metadata"]["name"] == doc["metadata"]["name"]
            ]
            if len(matches) != 1:
                raise KustomizeSubsetError(
                    f"patch {patch['path']} matches {len(matches)} resources, not one"
                )
            resources[matches[0]] = _merge(resources[matches[0]], doc)

    namespace = kustomization.get("namespace")
    for resource in resources:
        meta = resource.setdefault("metadata", {})
        if namespace:
            if resource["kind"] == "Namespace":
                meta["name"] = namespace
            elif resource["kind"] not in _CLUSTER_SCOPED:
                meta["namespace"] = namespace
        for label_set in kustomization.get("labels", []):
            if label_set.get("includeSelectors") or label_set.get("includeTemplates"):
                raise KustomizeSubsetError("labels with selectors/templates are not supported")
            meta.setdefault("labels", {}).update(label_set["pairs"])
        _set_image(resource, kustomization.get("images", []))
    return resources
