"""Helpers for tests that run `switchyard up` as a real process and end it: its descendants,
whether they are gone, free port ranges, reading its output as it comes."""

from __future__ import annotations

import fcntl
import os
import pty
import queue
import select
import socket
import subprocess
import termios
import threading
import time
from pathlib import Path
from typing import IO

PROC = Path("/proc")


def _stat(pid: int) -> list[str] | None:
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Running (a zombie nobody has reaped yet counts as gone: it holds no port, runs nothing)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, grandchildren, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_gone(pids: set[int], timeout_s: float) -> set[int]:
    """Wait until none of `pids` runs; the ones still running at the end."""
    deadline = time.monotonic() + timeout_s
    while (left := {p for p in pids if alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def wait_ports_free(ports: list[int], timeout_s: float) -> list[int]:
    """Wait until every port can be bound; the ones still taken at the end."""
    deadline = time.monotonic() + timeout_s
    while (busy := [p for p in ports if not port_free(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return busy


def sockets_on(ports: list[int]) -> str:
    """What holds `ports` (for a failure message): the kernel's TCP table for them."""
    if not ports:
        return ""
    try:
        table = subprocess.run(["ss", "-tanp"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"(ss failed: {exc})"
    wanted = tuple(f":{p} " for p in ports)
    return "\n".join(line for line in table.splitlines() if any(w in line + " " for w in wanted))


def free_port_range(count: int = 5) -> int:
    """A base port whose next `count` ports are all free now."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + count < 65535 and all(port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free port range")


class Lines:
    """The lines a process writes, read on a thread; `until(text)` waits for one containing it."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)
        stream.close()

    def wait_closed(self, timeout_s: float = 30) -> None:
        """After the process has exited: the reader has seen the end and closed the pipe."""
        self._thread.join(timeout_s)

    def until(self, text: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no line with {text!r} within {timeout_s} s:\n" + "\n".join(self.seen[-60:])
                ) from None
            if line is None:
                raise AssertionError(
                    f"output ended before {text!r}:\n" + "\n".join(self.seen[-60:])
                )
            self.seen.append(line)
            if text in line:
                return line


def start_up(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], Lines]:
    process = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    return process, Lines(process.stdout)


def start_up_in_terminal(
    argv: list[str], env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int]:
    """Start `argv` as a terminal session's leader, its stdin/stdout/stderr that terminal; the
    returned fd is the terminal's other end: closing it is closing the terminal window (the
    kernel sends SIGHUP, and writes to the terminal fail from then on)."""
    controller, terminal = pty.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
        preexec_fn=take_terminal,
    )
    os.close(terminal)
    return process, controller


def read_until(fd: int, text: str, timeout_s: float) -> str:
    """Read the terminal until `text` appears; everything read so far."""
    seen = b""
    deadline = time.monotonic() + timeout_s
    while text.encode() not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            shown = seen.decode(errors="replace")
            raise AssertionError(f"no {text!r} within {timeout_s} s:\n{shown}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                shown = seen.decode(errors="replace")
                raise AssertionError(f"terminal closed before {text!r}:\n{shown}")
            seen += chunk
    return seen.decode(errors="replace")
