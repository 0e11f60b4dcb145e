"""A real PostgreSQL server for tests, started from the installed binaries and torn down after.

`PostgresServer.start()` runs `initdb` and `pg_ctl` from /usr/lib/postgresql/<version>/bin (the
newest installed; `SWITCHYARD_TEST_PG_BIN` names another directory instead) into a fresh
temporary directory, with the C.UTF-8 locale, password (SCRAM) authentication, listening on
127.0.0.1 on a free port.
PostgreSQL refuses to run as root, so under root every server command runs as the `postgres`
system user (`runuser`). Test clusters run with `fsync=off`: a test server need not survive a
power cut, and it keeps the shared disk quiet (`start(fsync=True)` for benchmarks).

When the binaries are missing the fixture FAILS (it does not skip) and names the set-up step
that installs them: `./scripts/setup` (scripts/setup.d/10-postgres.sh).

Use the session fixture `postgres_server` (import it into a conftest) and `create_database()`
for an isolated database per test.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "find_postgres_bin", "postgres_server"]

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"  # the system user the server runs as when tests run as root
SUPERUSER = "switchyard"  # the database superuser initdb creates
_MISSING = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found in {glob}. "
    "Run ./scripts/setup (scripts/setup.d/10-postgres.sh installs the `postgresql` package), "
    "or point SWITCHYARD_TEST_PG_BIN at a directory holding them "
    "(SWITCHYARD_TEST_PG_BIN={override!r})."
)


def find_postgres_bin() -> Path | None:
    """The newest installed PostgreSQL bin directory holding initdb and pg_ctl, or None."""
    override = os.environ.get("SWITCHYARD_TEST_PG_BIN")

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)

    candidates = (
        [Path(override)]
        if override
        else sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")), key=version, reverse=True)
    )
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One running PostgreSQL cluster in a temporary directory."""

    def __init__(self, bin_dir: Path, root: Path, run_as: str | None, fsync: bool = False) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.run_as = run_as
        self.fsync = fsync
        self.host = "127.0.0.1"
        self.port = 0
        self.user = SUPERUSER
        self.password = secrets.token_urlsafe(16)
        self._running = False

    # --- life cycle ---------------------------------------------------------------------------

    @classmethod
    def start(cls, *, fsync: bool = False) -> PostgresServer:
        """Start a cluster; `fsync=True` makes commits durable (benchmarks), off for tests."""
        bin_dir = find_postgres_bin()
        if bin_dir is None:
            override = os.environ.get("SWITCHYARD_TEST_PG_BIN", "")
            pytest.fail(_MISSING.format(glob=PG_BIN_GLOB, override=override), pytrace=False)
        run_as: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError:
                pytest.fail(
                    f"tests run as root and PostgreSQL refuses to: the {SERVER_USER!r} system user "
                    "it would run as does not exist. Run ./scripts/setup (it installs the "
                    "postgresql package, which creates that user).",
                    pytrace=False,
                )
            run_as = SERVER_USER
        root = Path(tempfile.mkdtemp(prefix="switchyard-pg-"))
        server = cls(bin_dir, root, run_as, fsync)
        try:
            server._init()
            server._launch()
        except BaseException:
            server.stop()
            raise
        atexit.register(server.stop)  # a safety net if the session dies before teardown
        return server

    def _command(self, *args: str) -> list[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as is not None:
            runuser = shutil.which("runuser", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
            command = [runuser or "runuser", "-u", self.run_as, "--", *command]
        return command

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "TZ": "UTC"}
        return subprocess.run(
            self._command(*args),
            capture_output=True,
            text=True,
            env=env,
            cwd=self.root,
            timeout=timeout,
            check=False,
        )

    def _init(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            for path in (self.root, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        result = self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            self.user,
            "--pwfile",
            str(pwfile),
            "--auth",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--locale",
            "C.UTF-8",
            "--no-sync",
        )
        pwfile.unlink()
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stderr[-4000:]}")

    def _launch(self, port: int | None = None) -> None:
        last_error = ""
        for _ in range(1 if port else 5):  # a free port can be taken between probe and bind
            self.port = port or _free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-c port={self.port}",
                    f"-c unix_socket_directories={self.root}",
                    f"-c fsync={'on' if self.fsync else 'off'}",
                    f"-c full_page_writes={'on' if self.fsync else 'off'}",
                    "-c shared_buffers=32MB",
                    "-c max_connections=100",
                    "-c timezone=UTC",
                ]
            )
            result = self._run(
                "pg_ctl",
                "start",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-o",
                options,
            )
            if result.returncode == 0:
                self._running = True
                return
            last_error = result.stderr + self._log_tail()
            if "could not bind" not in last_error and "in use" not in last_error:
                break
        raise RuntimeError(f"PostgreSQL did not start:\n{last_error[-4000:]}")

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def pause(self) -> None:
        """Stop the server (immediate shutdown, as if it went away), keeping its data."""
        if self._running:
            self._running = False
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "60")

    def resume(self) -> None:
        """Start a paused server again on the same port."""
        if not self._running:
            self._launch(self.port)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory. Idempotent."""
        if self._running:
            self._running = False
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60")
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    # --- use ----------------------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres", *, password: str | None = None) -> str:
        """A `postgresql://` URL for `dbname` (with the real password unless one is given)."""
        secret = self.password if password is None else password
        return f"postgresql://{self.user}:{secret}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its DSN."""
        import psycopg  # the router extra; imported here so the module loads without it

        name = name or f"test_{secrets.token_hex(6)}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a plain database name: {name!r}")
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # name checked above
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a plain database name: {name!r}")
        with (
            psycopg.connect(self.dsn(), autocommit=True) as conn,
            contextlib.suppress(psycopg.Error),
        ):
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session; fails (not skips) when PostgreSQL is absent."""
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()
