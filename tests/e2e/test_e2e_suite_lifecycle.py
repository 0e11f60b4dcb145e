"""`switchyard up` as a user runs it: whatever ends the supervisor (Ctrl-C, SIGTERM, a closed
terminal, kill -9), every service it started is gone and every port free within a bounded time;
a second `up` while one runs refuses before starting anything.

The plan is reduced to the three quick services (classifier, frontier proxy, router; a frontier
key in the environment, so no vLLM stand-in): the same supervisor code starts them as starts
the whole suite. tests/e2e/test_e2e_up_demo.py does the same with vLLM's engine processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from suite_processes import (
    Lines,
    alive,
    command_line,
    descendants,
    free_port_range,
    read_until,
    sockets_on,
    start_up,
    start_up_in_terminal,
    wait_gone,
    wait_ports_free,
)

from switchyard.suite.supervisor import ProcessSpec, Supervisor

BIN = Path(sys.executable).parent
QUICK = "classifier,frontier-proxy,router"
QUICK_PORTS = (0, 1, 3)  # router, classifier, frontier proxy: base port + these


ENV = {"OPENAI_API_KEY": "sk-test-not-used"}


def _argv(state_dir: Path, base: int) -> list[str]:
    return [str(BIN / "switchyard-suite"), "--only", QUICK, "--base-port", str(base)] + [
        "--state-dir",
        str(state_dir),
    ]


def _up(state_dir: Path, base: int) -> tuple[subprocess.Popen[str], Lines]:
    process, lines = start_up(_argv(state_dir, base), ENV)
    try:
        lines.until("Switchyard is up", 180)
    except AssertionError:
        process.kill()
        process.wait(30)
        lines.wait_closed()
        raise
    return process, lines


def _assert_all_gone(children: set[int], base: int) -> None:
    assert wait_gone(children, 60) == set(), {p: command_line(p) for p in children if alive(p)}
    busy = wait_ports_free([base + i for i in QUICK_PORTS], 30)
    assert busy == [], sockets_on(busy)


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name
)
def test_children_die_with_the_supervisor(tmp_path: Path, sig: signal.Signals) -> None:
    base = free_port_range()
    process, lines = _up(tmp_path, base)
    children = descendants(process.pid)
    names = {command_line(p).split("/")[-1].strip() for p in children}
    assert {"switchyard-classifier", "switchyard-frontier-proxy", "switchyard-router"} <= names
    os.kill(process.pid, sig)
    process.wait(60)
    lines.wait_closed()
    _assert_all_gone(children, base)
    if sig != signal.SIGKILL:
        assert process.returncode == 0


@pytest.mark.slow
def test_closing_the_terminal_stops_the_suite(tmp_path: Path) -> None:
    base = free_port_range()
    process, terminal = start_up_in_terminal(_argv(tmp_path, base), ENV)
    try:
        read_until(terminal, "Switchyard is up", 180)
        children = descendants(process.pid)
        assert len(children) >= 3
    finally:
        os.close(terminal)  # the window closes: SIGHUP, and the terminal is gone for writes
    process.wait(60)
    _assert_all_gone(children, base)


@pytest.mark.slow
def test_a_second_up_refuses_and_starts_nothing(tmp_path: Path) -> None:
    base = free_port_range()
    first, lines = _up(tmp_path / "first", base)
    try:
        before = descendants(first.pid)
        second = subprocess.run(
            [*_argv(tmp_path / "second", base), "--demo"],
            env={**os.environ, **ENV},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "already in use" in second.stdout and "Nothing was started" in second.stdout
        assert "healthy" not in second.stdout and "Demo" not in second.stdout
        assert not (tmp_path / "second" / "logs").exists()
        same_folder = subprocess.run(
            _argv(tmp_path / "first", free_port_range()),
            env={**os.environ, **ENV},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert same_folder.returncode == 1 and f"pid {first.pid}" in same_folder.stdout
        # the first suite is untouched
        assert descendants(first.pid) == before and all(alive(p) for p in before)
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(60)
        lines.wait_closed()


def test_stopping_a_child_reaps_what_it_left_behind(tmp_path: Path) -> None:
    """A child killed outright leaves its own children (vLLM's engine core under local
    inference): stopping it signals its whole process group."""
    grandchild = (
        "import subprocess, sys, time;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
        "print(p.pid, flush=True); time.sleep(600)"
    )
    supervisor = Supervisor(tmp_path / "logs", grace_s=5)
    supervisor.start(ProcessSpec("leaves-a-child", [sys.executable, "-c", grandchild]))
    log = tmp_path / "logs" / "leaves-a-child.log"
    for _ in range(100):
        if log.exists() and log.read_text().strip():
            break
        wait_gone({supervisor.pid("leaves-a-child")}, 0.1)
    orphan = int(log.read_text().split()[0])
    os.kill(supervisor.pid("leaves-a-child"), signal.SIGKILL)
    wait_gone({supervisor.pid("leaves-a-child")}, 10)
    assert alive(orphan)
    supervisor.stop_all()
    assert wait_gone({orphan}, 10) == set()
