"""What `switchyard up` runs: the four services (and, without frontier keys, a stand-in
frontier) on this machine with CPU defaults, and the configuration files they read.

Frontier choice, in order:
- `OPENAI_API_KEY` set: the frontier proxy's built-in catalog (gpt-4o-mini, gpt-4o).
- `ANTHROPIC_API_KEY` set: claude-haiku-4-5 and claude-sonnet-4-5.
- neither: a STAND-IN frontier. vLLM's own OpenAI-compatible server runs the small local model
  on this machine and the proxy's catalog points at it as an `openai_compatible` provider, priced
  at gpt-4o-mini's list prices so the cost report shows what the traffic would have cost. Its
  answers are the small model's, not a frontier model's; `up` says so loudly.

State (configuration files, logs, the ledger, the spill journal) lives in one folder per
checkout: `<checkout>/.switchyard/suite` when the suite runs from a source checkout (an editable
install, as ./scripts/setup makes), otherwise `~/.cache/switchyard/suite/<environment>` keyed by
the Python environment. `SWITCHYARD_STATE_DIR` or `--state-dir` picks another.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from switchyard.suite.supervisor import ProcessSpec

__all__ = [
    "STANDIN_MODEL",
    "SUITE_PARTS",
    "SuitePlan",
    "checkout_root",
    "default_state_dir",
    "plan_suite",
    "router_config",
    "standin_catalog",
]

#: What `up` can start, in start order; `--only` picks some of them.
SUITE_PARTS = ("standin-frontier", "classifier", "local-inference", "frontier-proxy", "router")

STANDIN_MODEL = "standin-frontier"
#: A small 2-core cloud VM's on-demand price, the default machine rate `up` gives local-inference.
LOCAL_MACHINE_USD_PER_HOUR = 0.10
#: vLLM's processes stop slowly: the engine waits up to 5 s for its worker, and tearing down an
#: interpreter holding torch took 4-15 s on the 2-core build machine under load.
VLLM_STOP_GRACE_S = 45.0
LOCAL_PRICING = {"input_usd_per_million_tokens": 0.02, "output_usd_per_million_tokens": 0.05}
_FRONTIER_SETS: dict[str, list[tuple[str, str, float, float]]] = {
    # target, model, input $/Mtok, output $/Mtok (list prices; the proxy bills its own)
    "openai": [
        ("frontier-general", "gpt-4o-mini", 0.15, 0.60),
        ("frontier-strong", "gpt-4o", 2.50, 10.00),
    ],
    "anthropic": [
        ("frontier-general", "claude-haiku-4-5", 1.00, 5.00),
        ("frontier-strong", "claude-sonnet-4-5", 3.00, 15.00),
    ],
    "standin": [("frontier-general", STANDIN_MODEL, 0.15, 0.60)],
}


def _script(name: str) -> str:
    """A console script of this installation (next to the running Python)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def checkout_root(module_file: str | Path = __file__) -> Path | None:
    """The source checkout this suite runs from (editable install), or None when installed."""
    for folder in Path(module_file).resolve().parents:
        if (folder / "services" / "suite" / "pyproject.toml").is_file() and (
            folder / "scripts" / "up"
        ).is_file():
            return folder
    return None


def default_state_dir(
    env: Mapping[str, str] | None = None, *, module_file: str | Path = __file__
) -> Path:
    """Where `up` keeps its state unless told otherwise (module docstring): one folder per
    checkout, so two checkouts never share logs, ledger or configuration."""
    env = os.environ if env is None else env
    if env.get("SWITCHYARD_STATE_DIR"):
        return Path(env["SWITCHYARD_STATE_DIR"]).expanduser()
    checkout = checkout_root(module_file)
    if checkout is not None:
        return checkout / ".switchyard" / "suite"
    environment = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    return Path.home() / ".cache" / "switchyard" / "suite" / environment


@dataclass
class SuitePlan:
    state_dir: Path
    frontier: str  # openai | anthropic | standin
    router_address: str
    addresses: dict[str, str]
    router_config_path: Path
    specs: list[ProcessSpec]
    host: str = "127.0.0.1"
    #: The port each part of the plan listens on (what `up` checks is free before starting).
    ports: dict[str, int] = field(default_factory=dict)
    otlp_endpoint: str | None = None


def router_config(
    *,
    classifier: str,
    local: str,
    frontier: str,
    frontier_set: str,
    local_model: str,
    ledger_path: Path,
) -> dict[str, Any]:
    targets: dict[str, Any] = {
        "local-general": {
            "backend": "local-inference",
            "model": local_model,
            "pricing": LOCAL_PRICING,
        }
    }
    for name, model, inp, out in _FRONTIER_SETS[frontier_set]:
        targets[name] = {
            "backend": "frontier-proxy",
            "model": model,
            "pricing": {"input_usd_per_million_tokens": inp, "output_usd_per_million_tokens": out},
        }
    strong = "frontier-strong" if "frontier-strong" in targets else "frontier-general"
    fallbacks: dict[str, list[str]] = {
        "local-general": ["frontier-general"],
        "frontier-general": ["local-general"],
    }
    if strong != "frontier-general":
        fallbacks[strong] = ["frontier-general", "local-general"]
    return {
        "classifier": {"address": classifier, "timeout_ms": 1000},
        "backends": {
            "local-inference": {"address": local, "kind": "LOCAL", "timeout_s": 300},
            "frontier-proxy": {"address": frontier, "kind": "FRONTIER", "timeout_s": 300},
        },
        "targets": targets,
        "routing": {
            "escalation_threshold": 0.16,  # as config/router.yaml (fitted to the shipped model)
            "local_target": "local-general",
            "frontier_target": "frontier-general",
            "default_target": "local-general",
            "baseline_target": "frontier-general",
            "estimated_output_tokens": 256,
            "fallbacks": fallbacks,
            # as config/router.yaml: thresholds moved per task type, nothing forced
            "task_rules": {
                "CLASSIFICATION": {"threshold_delta": 0.03},
                "EXTRACTION": {"threshold_delta": 0.03},
                "MATH": {"frontier_target": strong, "threshold_delta": -0.03},
                "SCIENCE": {"frontier_target": strong, "threshold_delta": -0.03},
            },
        },
        "tenants": {},
        "ledger": {"url": f"sqlite:{ledger_path}"},
    }


def standin_catalog(base_url: str, upstream_model: str) -> dict[str, Any]:
    """A proxy catalog whose one model is an OpenAI-compatible server on this machine."""
    return {
        "default_model": STANDIN_MODEL,
        "models": [
            {
                "name": STANDIN_MODEL,
                "provider": "openai_compatible",
                "upstream_model": upstream_model,
                "base_url": base_url,
                "provider_name": "standin",
                "price_lookup": False,
                "prices": {"input_usd_per_mtok": 0.15, "output_usd_per_mtok": 0.60},
                "context_window": 2048,
                "default_max_tokens": 256,
            }
        ],
    }


def frontier_set_for(env: Mapping[str, str]) -> str:
    if env.get("OPENAI_API_KEY"):
        return "openai"
    if env.get("ANTHROPIC_API_KEY"):
        return "anthropic"
    return "standin"


def plan_suite(
    state_dir: Path,
    *,
    base_port: int = 50051,
    host: str = "127.0.0.1",
    env: Mapping[str, str] | None = None,
    model_dir: Path | None = None,
    local_model_name: str = "SmolLM2-135M-Instruct",
    startup_timeout_s: float = 900.0,
    otlp_endpoint: str | None = None,
    only: Collection[str] | None = None,
) -> SuitePlan:
    """Write the configuration files under `state_dir` and describe the processes to start.

    `otlp_endpoint`: every Switchyard service exports its traces there (OTLP/gRPC, for example
    Jaeger's http://localhost:4317). `only`: start just these parts (`SUITE_PARTS`); the others'
    addresses stay in the configuration.
    """
    env = os.environ if env is None else env
    unknown = sorted(set(only or ()) - set(SUITE_PARTS))
    if unknown:
        raise ValueError(
            f"unknown part(s) {', '.join(unknown)}; the suite has: {', '.join(SUITE_PARTS)}"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    ports = {
        "router": base_port,
        "classifier": base_port + 1,
        "local-inference": base_port + 2,
        "frontier-proxy": base_port + 3,
        "standin-frontier": base_port + 4,
    }
    addresses = {name: f"{host}:{port}" for name, port in ports.items()}
    frontier = frontier_set_for(env)
    specs: list[ProcessSpec] = []
    wanted = set(only or SUITE_PARTS)
    needs_model = frontier == "standin" and bool(wanted & {"standin-frontier", "local-inference"})

    if frontier == "standin":
        if model_dir is None and needs_model:
            from switchyard.local_inference.model_preparation import locate_prepared_model

            model_dir = locate_prepared_model()
        base_url = f"http://{addresses['standin-frontier']}/v1"
        catalog_path = state_dir / "frontier-catalog.yaml"
        catalog_path.write_text(yaml.safe_dump(standin_catalog(base_url, local_model_name)))
        specs.append(
            ProcessSpec(
                name="standin-frontier",
                argv=[
                    sys.executable,
                    "-m",
                    "vllm.entrypoints.openai.api_server",
                    "--model",
                    str(model_dir or ""),
                    "--served-model-name",
                    local_model_name,
                    "--host",
                    host,
                    "--port",
                    str(ports["standin-frontier"]),
                    "--max-model-len",
                    "2048",
                    "--dtype",
                    "bfloat16",
                    "--max-num-seqs",
                    "16",
                    "--enforce-eager",
                    "--disable-log-stats",
                ],
                env={
                    "VLLM_CPU_KVCACHE_SPACE": env.get("VLLM_CPU_KVCACHE_SPACE", "1"),
                    "HF_HUB_OFFLINE": "1",
                    "VLLM_NO_USAGE_STATS": "1",
                    "TOKENIZERS_PARALLELISM": "false",
                },
                http_ready_url=f"{base_url}/models",
                startup_timeout_s=startup_timeout_s,
                stop_grace_s=VLLM_STOP_GRACE_S,
            )
        )
        proxy_env = {"SWITCHYARD_FRONTIER_PROXY_CATALOG": str(catalog_path)}
    else:
        proxy_env = {}

    telemetry = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint} if otlp_endpoint else {}

    def service(
        name: str,
        script: str,
        prefix: str,
        extra: dict[str, str],
        stop_grace_s: float | None = None,
    ) -> ProcessSpec:
        return ProcessSpec(
            name=name,
            argv=[_script(script)],
            env={
                f"{prefix}HOST": host,
                f"{prefix}PORT": str(ports[name]),
                **telemetry,
                **extra,
            },
            grpc_address=addresses[name],
            startup_timeout_s=startup_timeout_s,
            stop_grace_s=stop_grace_s,
        )

    specs.append(service("classifier", "switchyard-classifier", "SWITCHYARD_CLASSIFIER_", {}))
    local_env = {
        "SWITCHYARD_LOCAL_INFERENCE_SERVED_MODEL_NAME": local_model_name,
        # what this machine costs; the local-inference service attributes it per request
        "SWITCHYARD_LOCAL_INFERENCE_USD_PER_HOUR": env.get(
            "SWITCHYARD_LOCAL_INFERENCE_USD_PER_HOUR", str(LOCAL_MACHINE_USD_PER_HOUR)
        ),
    }
    if model_dir is not None:
        local_env["SWITCHYARD_LOCAL_INFERENCE_MODEL"] = str(model_dir)
    specs.append(
        service(
            "local-inference",
            "switchyard-local-inference",
            "SWITCHYARD_LOCAL_INFERENCE_",
            local_env,
            stop_grace_s=VLLM_STOP_GRACE_S,
        )
    )
    specs.append(
        service(
            "frontier-proxy", "switchyard-frontier-proxy", "SWITCHYARD_FRONTIER_PROXY_", proxy_env
        )
    )
    config_path = state_dir / "router.yaml"
    config_path.write_text(
        yaml.safe_dump(
            router_config(
                classifier=addresses["classifier"],
                local=addresses["local-inference"],
                frontier=addresses["frontier-proxy"],
                frontier_set=frontier,
                local_model=local_model_name,
                ledger_path=state_dir / "ledger.db",
            ),
            sort_keys=False,
        )
    )
    specs.append(
        service(
            "router",
            "switchyard-router",
            "SWITCHYARD_ROUTER_",
            {
                "SWITCHYARD_ROUTER_CONFIG": str(config_path),
                "SWITCHYARD_ROUTER_LEDGER_JOURNAL_DIR": str(state_dir / "ledger-journal"),
            },
        )
    )
    chosen = [s for s in specs if s.name in wanted]
    return SuitePlan(
        state_dir=state_dir,
        frontier=frontier,
        router_address=addresses["router"],
        addresses={s.name: s.grpc_address or s.http_ready_url or "" for s in chosen},
        router_config_path=config_path,
        specs=chosen,
        host=host,
        ports={s.name: ports[s.name] for s in chosen},
        otlp_endpoint=otlp_endpoint or None,
    )
