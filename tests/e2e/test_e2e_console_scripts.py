"""Every console script answers `--help` with its settings and exits without starting anything
(`switchyard-router --help` used to start the router on 0.0.0.0)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from suite_processes import free_port_range, port_free

from switchyard.classifier.settings import ClassifierSettings
from switchyard.frontier_proxy.settings import FrontierProxySettings
from switchyard.local_inference.settings import LocalInferenceSettings
from switchyard.router.settings import RouterSettings
from switchyard.runtime.settings import ServiceSettings

BIN = Path(sys.executable).parent
SERVICES: dict[str, type[ServiceSettings]] = {
    "switchyard-router": RouterSettings,
    "switchyard-classifier": ClassifierSettings,
    "switchyard-local-inference": LocalInferenceSettings,
    "switchyard-frontier-proxy": FrontierProxySettings,
}


def _help(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(BIN / script), *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,  # a script that starts serving instead never returns: the test fails
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert '"message": "serving"' not in done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("script", sorted(SERVICES))
def test_service_help_lists_every_setting_and_starts_nothing(script: str) -> None:
    settings = SERVICES[script]
    port = free_port_range(1)
    prefix = settings.model_config["env_prefix"]
    env = {"PATH": "", f"{prefix}HOST": "127.0.0.1", f"{prefix}PORT": str(port)}
    text = _help(script, env=env)
    assert text.startswith(f"usage: {script}")
    for name, field in settings.model_fields.items():
        assert f"{prefix}{name.upper()}  (default: " in text, name
        if field.description:
            assert field.description.split()[0] in text
    assert f"(binds {settings.default_port})" in text
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in text
    assert "pip install 'switchyard-client[cli]'" in text
    assert port_free(port)
    if script != "switchyard-router":
        return  # the same runtime code refuses arguments for all four
    # anything else is refused with a pointer to --help, still without starting
    wrong = subprocess.run(
        [str(BIN / script), "--port", "1"], capture_output=True, text=True, timeout=60, env=env
    )
    assert wrong.returncode == 2 and f"{script} --help" in wrong.stderr


def test_suite_and_client_help_name_their_variables() -> None:
    suite = _help("switchyard-suite")
    for item in ("--state-dir", "SWITCHYARD_STATE_DIR", "--otlp-endpoint", "--base-port"):
        assert item in suite
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in suite and "(default: 50051)" in suite
    client = _help("switchyard")
    assert "SWITCHYARD_ADDRESS" in client and "SWITCHYARD_API_KEY" in client
    assert "ask" in client and "costs" in client
    assert "--state-dir" in _help("switchyard", "up")
