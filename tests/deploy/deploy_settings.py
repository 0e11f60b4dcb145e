"""Check that deployment files only set `SWITCHYARD_<SERVICE>_*` variables the service knows.

Each service refuses unknown variables of its own prefix at start-up (a typo must not be
silently ignored), so a wrong name in compose or a manifest would stop the container; these
checks find it offline, against the settings classes themselves.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable

from switchyard.runtime.settings import ServiceSettings

__all__ = ["assert_known_settings", "settings_class"]

_MODULES = {
    "router": "switchyard.router.settings",
    "classifier": "switchyard.classifier.settings",
    "local-inference": "switchyard.local_inference.settings",
    "frontier-proxy": "switchyard.frontier_proxy.settings",
}


def settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(_MODULES[service])
    (cls,) = [
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, ServiceSettings)
        and c is not ServiceSettings
        and c.__module__ == module.__name__
    ]
    return cls


def assert_known_settings(service: str, names: Iterable[str]) -> None:
    cls = settings_class(service)
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    known = {prefix + field.upper() for field in cls.model_fields}
    unknown = sorted(n for n in names if n.upper().startswith(prefix) and n.upper() not in known)
    assert not unknown, f"{service}: unknown settings {unknown}; known: {sorted(known)}"
