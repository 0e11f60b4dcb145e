"""Start several service processes, wait until each is healthy, stop them all cleanly.

Each process gets its own session and process group (so a terminal's Ctrl-C or hang-up reaches
only the supervisor, which then stops the children in reverse order: SIGTERM to the whole group,
the grace period, then SIGKILL) and its own log file. Readiness is the standard gRPC health check
(`grpc.health.v1`, service "") for gRPC services, or an HTTP GET answering 200 for HTTP ones.

Children die with the supervisor however it ends:
- a signal it can catch (SIGINT, SIGTERM, SIGHUP: `switchyard up` handles all three) or a normal
  exit: `stop_all` (also registered with atexit);
- a crash or SIGKILL: on Linux every child is started with PR_SET_PDEATHSIG = SIGTERM, so the
  kernel sends it SIGTERM when the supervisor dies and it shuts down as on any SIGTERM. The
  kernel ties that to the *thread* that started the child: call `start` from a thread that
  lives as long as the supervisor (the main thread, as `up` does).
- grandchildren (vLLM's engine core under local-inference, under the stand-in's server) are in
  their child's process group: a child stopping on SIGTERM stops them (vLLM shuts its engine
  core down), and stopping a child signals its whole group, so an engine core left behind by
  a child that was itself killed is reaped too. vLLM's engine core does not watch its parent
  (only its multiprocess workers have a death pipe); without that group kill it would run on.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["ProcessSpec", "StartupError", "Supervisor"]


class StartupError(RuntimeError):
    """A process exited or stayed unhealthy past its start-up timeout."""


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    grpc_address: str | None = None  # health-checked over gRPC
    http_ready_url: str | None = None  # or over HTTP
    startup_timeout_s: float = 120.0
    #: How long it may take to stop after SIGTERM before SIGKILL (None: the supervisor's).
    stop_grace_s: float | None = None


@dataclass
class _Running:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    log_path: Path


def _grpc_serving(address: str) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2
            )
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def _http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 - local URL we built
            return bool(reply.status == 200)
    except OSError:
        return False


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A `preexec_fn` making the child receive SIGTERM when `parent_pid` dies (Linux), or None
    where the kernel has no such thing. libc's prctl is looked up here, before any fork."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl: nobody will signal us
            os._exit(1)

    return preexec


def group_alive(pgid: int) -> bool:
    """Whether any process of group `pgid` still runs (zombies awaiting a reaper count as gone)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ")"
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _wait_group(pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


class Supervisor:
    def __init__(self, log_dir: Path, *, grace_s: float = 15.0) -> None:
        self.log_dir = log_dir
        self.grace_s = grace_s
        self.running: list[_Running] = []
        log_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop_all)  # a safety net: never leave children behind

    def start(self, spec: ProcessSpec) -> None:
        log_path = self.log_dir / f"{spec.name}.log"
        log = log_path.open("ab")
        env = {**os.environ, **spec.env}
        process = subprocess.Popen(  # noqa: S603 - argv we built
            spec.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent(os.getpid()),  # noqa: PLW1509 - see the module docstring
        )
        log.close()
        self.running.append(_Running(spec, process, log_path))

    def wait_healthy(self, name: str) -> None:
        entry = self._entry(name)
        spec = entry.spec
        deadline = time.monotonic() + spec.startup_timeout_s
        while time.monotonic() < deadline:
            code = entry.process.poll()
            if code is not None:
                raise StartupError(
                    f"{name} exited with status {code} during start-up; "
                    f"last log lines:\n{self.tail(name)}"
                )
            if spec.grpc_address and _grpc_serving(spec.grpc_address):
                return
            if spec.http_ready_url and _http_ready(spec.http_ready_url):
                return
            time.sleep(0.5)
        raise StartupError(
            f"{name} was not healthy within {spec.startup_timeout_s:.0f} s; "
            f"last log lines:\n{self.tail(name)}"
        )

    def _entry(self, name: str) -> _Running:
        for entry in self.running:
            if entry.spec.name == name:
                return entry
        raise KeyError(name)

    def pid(self, name: str) -> int:
        return self._entry(name).process.pid

    def tail(self, name: str, lines: int = 20) -> str:
        path = self._entry(name).log_path
        try:
            text = path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def exited(self) -> list[tuple[str, int]]:
        """Processes that have exited, with their status."""
        return [(e.spec.name, code) for e in self.running if (code := e.process.poll()) is not None]

    def signal(self, name: str, sig: int) -> None:
        entry = self._entry(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(entry.process.pid, sig)

    def _grace(self, entry: _Running) -> float:
        return self.grace_s if entry.spec.stop_grace_s is None else entry.spec.stop_grace_s

    def stop_one(self, name: str, grace_s: float | None = None) -> int | None:
        entry = self._entry(name)
        return self._stop(entry, self._grace(entry) if grace_s is None else grace_s)

    @staticmethod
    def _stop(entry: _Running, grace_s: float) -> int | None:
        """SIGTERM to the child's whole group (even when the child itself has already exited:
        its grandchildren may not have), the grace period, then SIGKILL to what is left."""
        process = entry.process
        pgid = process.pid  # start_new_session: the child leads its own group
        deadline = time.monotonic() + grace_s
        if process.poll() is None or group_alive(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                process.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
            if not _wait_group(pgid, max(0.0, deadline - time.monotonic())):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                _wait_group(pgid, 10)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        return process.returncode

    def stop_all(self) -> dict[str, int | None]:
        """Stop every process, the last started first."""
        codes: dict[str, int | None] = {}
        for entry in reversed(self.running):
            codes[entry.spec.name] = self._stop(entry, self._grace(entry))
        self.running.clear()
        return codes
