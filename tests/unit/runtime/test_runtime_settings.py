"""Settings are read once, validated strictly, and every problem is reported at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from switchyard.runtime.settings import (
    ServiceSettings,
    SettingsConfigDict,
    SettingsError,
    load_settings,
)


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_DEMO_")
    service_name = "demo"
    default_port = 50099
    api_key: str = ""


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_DEMO_LOG_LEVEL", "DEBUG")
    settings = load_settings(DemoSettings)
    assert settings.log_level == "DEBUG"
    assert settings.bind_port == 50099
    assert settings.log_prompts is False


def test_every_problem_listed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_DEMO_PORT", "seventy")
    monkeypatch.setenv("SWITCHYARD_DEMO_GRACE_PERIOD_S", "-3")
    monkeypatch.setenv("SWITCHYARD_DEMO_LOG_LEVEL", "LOUD")
    monkeypatch.setenv("SWITCHYARD_DEMO_GRACE_PERIOD", "3")  # typo: unknown setting
    with pytest.raises(SettingsError) as err:
        load_settings(DemoSettings)
    message = err.value.message
    assert "4 problem(s)" in message
    for name in ("PORT", "GRACE_PERIOD_S", "LOG_LEVEL", "GRACE_PERIOD:"):
        assert f"SWITCHYARD_DEMO_{name}" in message
    assert "'seventy'" in message


def test_secret_values_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    class Strict(DemoSettings):
        api_key: int = 0  # type: ignore[assignment]

    monkeypatch.setenv("SWITCHYARD_DEMO_API_KEY", "sk-very-secret")
    with pytest.raises(SettingsError) as err:
        load_settings(Strict)
    assert "SWITCHYARD_DEMO_API_KEY" in err.value.message
    assert "sk-very-secret" not in err.value.message


def test_console_script_refuses_to_start_with_one_message() -> None:
    code = (
        "import sys; sys.path.insert(0, 'tests/service/runtime');"
        "from echo_service import EchoSettings, echo_definition;"
        "from switchyard.runtime.server import run_service;"
        "sys.exit(run_service('echo', EchoSettings, echo_definition))"
    )
    env = {"SWITCHYARD_ECHO_PORT": "x", "SWITCHYARD_ECHO_LOG_LEVEL": "LOUD", "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "2 problem(s)" in done.stderr
    assert "SWITCHYARD_ECHO_PORT" in done.stderr and "SWITCHYARD_ECHO_LOG_LEVEL" in done.stderr
