"""`switchyard up --demo --otlp-endpoint ...` as a user runs it, vLLM's engine included: every
demo request's trace id is printed with its Jaeger link and its span tree reaches the OTLP
receiver; the demo reports its own requests; the printed `ask` hint works from a shell without
the virtualenv on PATH and shows the trace id; kill -9 of the supervisor leaves no process
behind (services and vLLM's engine core processes) and every port free.

The frontier is the wire-format stand-in (a key and a catalog in the environment), so the only
engine is local inference's.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from otlp_receiver import OtlpReceiver, ReceivedSpan
from suite_processes import (
    alive,
    command_line,
    descendants,
    free_port_range,
    sockets_on,
    start_up,
    wait_gone,
    wait_ports_free,
)
from support.frontier_standin import FrontierStandin

from switchyard.runtime import attributes as attr

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.timeout(1200)]

BIN = Path(sys.executable).parent
JAEGER = "http://jaeger.test:16686"
SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SPAN_KIND_SERVER


def _catalog(standin: FrontierStandin) -> dict:
    return {
        "default_model": "gpt-4o-mini",
        "models": [
            {
                "name": name,
                "provider": "openai",
                "base_url": standin.openai_base_url,
                "api_key_env": "OPENAI_API_KEY",
                "price_lookup": False,
                "prices": {"input_usd_per_mtok": inp, "output_usd_per_mtok": out},
                "context_window": 128000,
            }
            for name, inp, out in (("gpt-4o-mini", 0.15, 0.6), ("gpt-4o", 2.5, 10.0))
        ],
    }


async def _tree(receiver: OtlpReceiver, trace_id: str) -> list[ReceivedSpan]:
    """The trace's spans once the router's root, the classifier's and a backend's have arrived
    (the root ends last, so it can come in a later export batch than its children)."""
    for _ in range(150):
        spans = receiver.trace(trace_id)
        services = {s.service.removeprefix("switchyard-") for s in spans}
        rooted = any(s.parent_span_id == "" for s in spans)
        if (
            rooted
            and {"router", "classifier"} <= services
            and services
            & {
                "local-inference",
                "frontier-proxy",
            }
        ):
            return spans
        await asyncio.sleep(0.2)
    return receiver.trace(trace_id)


def _assert_request_tree(spans: list[ReceivedSpan], trace_id: str) -> None:
    roots = [s for s in spans if s.parent_span_id == ""]
    assert [(r.service, r.kind) for r in roots] == [("switchyard-router", SERVER_KIND)], trace_id
    children = [s.name for s in spans if s.parent_span_id == roots[0].span_id]
    assert attr.SPAN_ROUTER_CLASSIFY in children and attr.SPAN_ROUTER_GENERATE in children
    servers = {s.service for s in spans if s.kind == SERVER_KIND}
    assert "switchyard-classifier" in servers, servers
    assert servers & {"switchyard-local-inference", "switchyard-frontier-proxy"}, servers


async def test_up_demo_traces_hint_and_kill_9(tmp_path: Path) -> None:
    receiver = OtlpReceiver()
    endpoint = await receiver.start()
    base = free_port_range()
    async with FrontierStandin() as standin:
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(yaml.safe_dump(_catalog(standin)))
        env = {
            "OPENAI_API_KEY": standin.openai_key,
            "SWITCHYARD_FRONTIER_PROXY_CATALOG": str(catalog),
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_METRICS_EXPORTER": "none",
            "HF_HUB_OFFLINE": "1",
            # started from a shell without the virtualenv on PATH (an activated one would make
            # the bare name work and the hint rightly print it)
            "PATH": os.pathsep.join(
                p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != BIN
            ),
        }
        argv = [str(BIN / "switchyard-suite"), "--demo", "--base-port", str(base)]
        argv += ["--state-dir", str(tmp_path / "state"), "--otlp-endpoint", endpoint]
        process, lines = start_up([*argv, "--jaeger-url", JAEGER], env)
        try:
            hint = await asyncio.to_thread(lines.until, "Try: ", 900)
            await asyncio.to_thread(lines.until, "Traces of the demo's requests", 600)
            await asyncio.to_thread(lines.until, "Cost report of the demo's requests", 120)
            total = await asyncio.to_thread(lines.until, "TOTAL", 120)
            output = "\n".join(lines.seen)
            assert f"traces: every service exports to {endpoint}" in output

            # each demo request: its trace id, its Jaeger link, its span tree at the receiver
            traced = re.findall(rf"([0-9a-f]{{32}})  {re.escape(JAEGER)}/trace/\1", output)
            assert len(set(traced)) == 6, output
            for trace_id in traced:
                _assert_request_tree(await _tree(receiver, trace_id), trace_id)
            # the report is the demo's six requests (a fresh ledger: no others in the window)
            assert total.split()[:2] == ["TOTAL", "6"], total

            # the hint works from a shell that does not have the virtualenv on PATH
            command = shlex.split(hint.split("Try: ", 1)[1].split("   - Ctrl-C")[0])
            assert command[0] == str(BIN / "switchyard"), hint  # the full path, not on PATH
            asked = await asyncio.to_thread(
                subprocess.run,
                command,
                env={**os.environ, "PATH": "/usr/bin:/bin"},
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert asked.returncode == 0, asked.stderr
            (trace_line,) = [
                line for line in asked.stdout.splitlines() if line.startswith("trace:")
            ]
            _assert_request_tree(await _tree(receiver, trace_line.split()[1]), trace_line)

            # kill -9: the services and vLLM's engine core processes go too
            family = descendants(process.pid)
            scripts = {command_line(p).split(" ")[1].rsplit("/", 1)[-1] for p in family}
            assert "switchyard-local-inference" in scripts, scripts
            engine = [p for p in family if "EngineCore" in command_line(p)]
            assert len(family) > 4 and engine, {p: command_line(p) for p in family}
            os.kill(process.pid, signal.SIGKILL)
            process.wait(30)
            left = wait_gone(family, 120)
            assert left == set(), {p: command_line(p) for p in left if alive(p)}
            busy = wait_ports_free([base + i for i in range(4)], 30)
            assert busy == [], sockets_on(busy)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(120)
            lines.wait_closed()
            await receiver.stop()
