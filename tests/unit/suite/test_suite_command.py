"""What `switchyard up` decides before it starts anything: where its state lives, which ports it
needs and whether they are free, what it tells the user to type next, how it prints money."""

from __future__ import annotations

import io
import socket
import sys
from pathlib import Path

import pytest

from switchyard.suite.command import ask_hint, client_command, main, ports_in_use, state_lock
from switchyard.suite.plan import SUITE_PARTS, checkout_root, default_state_dir, plan_suite
from switchyard_client.cli.formatting import usd

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def _fake_checkout(root: Path) -> Path:
    module = root / "services" / "suite" / "switchyard" / "suite" / "plan.py"
    module.parent.mkdir(parents=True)
    module.write_text("")
    (root / "services" / "suite" / "pyproject.toml").write_text("")
    (root / "scripts").mkdir()
    (root / "scripts" / "up").write_text("")
    return module


def test_each_checkout_keeps_its_own_state(tmp_path: Path) -> None:
    first = _fake_checkout(tmp_path / "one")
    second = _fake_checkout(tmp_path / "two")
    assert default_state_dir({}, module_file=first) == tmp_path / "one" / ".switchyard" / "suite"
    assert default_state_dir({}, module_file=second) == tmp_path / "two" / ".switchyard" / "suite"
    # this checkout's suite, as the tests run it
    assert checkout_root() == REPO
    assert default_state_dir({}) == REPO / ".switchyard" / "suite"
    # an installed (non-checkout) suite keys its folder by the Python environment
    installed = tmp_path / "site-packages" / "switchyard" / "suite" / "plan.py"
    state = default_state_dir({}, module_file=installed)
    assert state.parent == Path.home() / ".cache" / "switchyard" / "suite"
    assert default_state_dir({"SWITCHYARD_STATE_DIR": str(tmp_path / "x")}) == tmp_path / "x"


def test_start_up_hint_names_a_command_the_shell_finds() -> None:
    script = BIN / "switchyard"
    assert script.exists()
    # `switchyard` is not on PATH: the full path of this installation's script
    assert client_command(path="/nonexistent") == str(script)
    assert client_command(path=str(BIN)) == "switchyard"
    assert ask_hint("127.0.0.1:50051", path="/nonexistent").startswith(f"{script} ask ")
    assert " ask --address 127.0.0.1:51051 " in ask_hint("127.0.0.1:51051", path=str(BIN))


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_ports_in_use_finds_a_listener() -> None:
    with _listener() as busy:
        port = busy.getsockname()[1]
        assert ports_in_use("127.0.0.1", {"router": port}) == {"router": port}
    assert ports_in_use("127.0.0.1", {"router": port}) == {}


def test_up_refuses_before_starting_anything_when_a_port_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with _listener() as busy:
        base = busy.getsockname()[1]
        out = io.StringIO()
        code = main(["--base-port", str(base), "--state-dir", str(tmp_path), "--demo"], out)
    assert code == 1
    text = out.getvalue()
    assert f"{base} (router) already in use" in text and "Nothing was started" in text
    assert "--base-port" in text
    assert "healthy" not in text and not (tmp_path / "logs").exists()


def test_a_second_up_on_the_same_state_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with state_lock(tmp_path):
        out = io.StringIO()
        assert main(["--state-dir", str(tmp_path), "--base-port", "1"], out) == 1
    assert "another `switchyard up`" in out.getvalue() and str(tmp_path) in out.getvalue()
    assert not (tmp_path / "router.yaml").exists()  # the running suite's files are untouched


def test_plan_passes_the_otlp_endpoint_and_starts_only_what_is_asked(tmp_path: Path) -> None:
    plan = plan_suite(
        tmp_path,
        env={"OPENAI_API_KEY": "sk-x"},
        base_port=61000,
        otlp_endpoint="http://127.0.0.1:4317",
    )
    assert [s.name for s in plan.specs] == [p for p in SUITE_PARTS if p != "standin-frontier"]
    for spec in plan.specs:
        assert spec.env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4317", spec.name
    assert plan.ports == {
        "classifier": 61001,
        "local-inference": 61002,
        "frontier-proxy": 61003,
        "router": 61000,
    }
    only = plan_suite(tmp_path, env={"OPENAI_API_KEY": "sk-x"}, only=["router", "classifier"])
    assert [s.name for s in only.specs] == ["classifier", "router"]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in only.specs[0].env
    with pytest.raises(ValueError, match="unknown part"):
        plan_suite(tmp_path, env={}, only=["routr"])


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0, "$0"),
        (-0.0, "$0"),
        (1.5, "$1.5000"),
        (-0.0123, "-$0.0123"),
        (0.000123, "$0.000123"),
        (1e-7, "$0.000000100"),  # a $1e-7 ceiling used to print as $0.000000
        (-1e-7, "-$0.000000100"),  # and a negative saving as $-0.000000
        (3.2e-9, "$0.0000000032"),
        (1e-13, "$1.0e-13"),
    ],
)
def test_money_is_readable_and_signed(value: float, shown: str) -> None:
    assert usd(value) == shown
