"""Where a hop's CPU goes: py-spy samples of a running service, summed by component.

Used by `scripts/bench_front_door.py --profile DIR` (one harness: the same processes, the same
load): while one system is under load, `py-spy record --native --format raw` samples each of its
processes (router, frontier proxy, classifier) and this module sorts every sample by the
innermost frame that belongs to a known component:

| component     | frames                                                                   |
|---------------|--------------------------------------------------------------------------|
| grpc          | grpc (Python and its cython/C core), grpc_health, grpc_reflection          |
| protobuf      | google.protobuf (Python and its upb C extension)                          |
| otel          | opentelemetry (spans, metrics, propagation, the gRPC instrumentation)     |
| logging       | structlog, logging, switchyard/runtime/logging.py                          |
| ledger        | switchyard/router/ledger (journal, writer, SQL), sqlite3                   |
| http          | httpx, httpcore, h11, anyio, uvicorn, httptools (upstream and door)        |
| model         | onnxruntime, tokenizers, numpy (the classifier's model)                    |
| config        | pydantic (settings and config objects read on the request path)           |
| ours          | every other switchyard module (routing, policy, conversion, relay, ...)   |
| gc            | the garbage collector (CPython's gc_collect_main)                         |
| event loop    | what is left: asyncio / uvloop, the interpreter, stdlib with no caller above |

Standard-library frames (json, dataclasses, asyncio, ...) are transparent: a sample whose leaf
is `json.dumps` called from the ledger counts as ledger, one called from the router's own code
as ours. Only threads holding Python frames are sampled (gRPC's C-core threads are not: their
CPU shows in /proc but not here), so the shares are of the sampled CPU; `summarise` also returns
the sample count so a reader can see how much was seen.

`inclusive` (and this file run as a script on a raw profile) gives each Python function's
inclusive share of the busy samples instead, what a flame graph's widths show:

    python scripts/hop_profile.py DIR/sy-grpc-routed_unary_1/router.txt [--match REGEX] [--top N]
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

__all__ = [
    "COMPONENTS",
    "classify_frame",
    "classify_stack",
    "idle",
    "record",
    "report",
    "summarise",
    "thread_cpu",
]

COMPONENTS = (
    "grpc",
    "protobuf",
    "otel",
    "logging",
    "ledger",
    "http",
    "model",
    "config",
    "ours",
    "gc",
    "event loop",
)

# (component, pattern on the frame's file or shared object), first match wins.
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("ledger", re.compile(r"switchyard/router/ledger/|sqlite3|_sqlite")),
    ("logging", re.compile(r"structlog/|/logging/__init__|switchyard/runtime/logging\.py")),
    ("otel", re.compile(r"opentelemetry/|wrapt/")),
    ("protobuf", re.compile(r"google/protobuf|_message\.cpython|upb|libprotobuf")),
    ("grpc", re.compile(r"/grpc/|grpc_health|grpc_reflection|cygrpc|libgrpc|grpc_")),
    ("http", re.compile(r"httpx/|httpcore/|h11/|anyio/|uvicorn/|httptools|starlette/")),
    ("model", re.compile(r"onnxruntime|tokenizers|numpy/|libgomp|mlas")),
    ("config", re.compile(r"pydantic")),
    ("gc", re.compile(r"^gc_collect|^gc_collect_main|^collect_with_callback")),
    ("ours", re.compile(r"switchyard/|scripts/")),
]

# "func (file:line)" for Python frames; "func (lib.so)" for native ones.
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<where>[^()]*)\)$")


# The process's entry point (main -> runtime.server.run -> the loop) sits below every sample:
# transparent, so what the loop does on its own counts as the event loop, not as ours.
_BOOTSTRAP = re.compile(r"switchyard/(runtime/server|[a-z_]+/__main__|[a-z_]+/service)\.py")
_BOOTSTRAP_FUNCS = frozenset(
    {"<module>", "main", "run", "run_service", "serve", "_serve_until_signal"}
)


def classify_frame(frame: str) -> str | None:
    """The component of one raw py-spy frame, or None for a transparent (stdlib) frame."""
    match = _FRAME.match(frame.strip())
    where = match.group("where") if match else frame
    func = match.group("func") if match else ""
    if func in _BOOTSTRAP_FUNCS and _BOOTSTRAP.search(where):
        return None
    for component, pattern in _RULES:
        if component == "gc":
            if pattern.search(func):
                return component
        elif pattern.search(where):
            return component
    return None


# A sample whose innermost named frame waits (a lock, a condition, a poll) is an idle thread
# that py-spy's native unwinding still reports: not CPU, left out.
_IDLE = re.compile(
    r"^(PyThread_acquire_lock_timed|pthread_cond_(timed)?wait|sem_(timed)?wait|epoll_wait|"
    r"poll|select|__futex|futex_|nanosleep|clock_nanosleep|_queue_SimpleQueue_get_impl)"
)


def idle(frames: list[str]) -> bool:
    """Whether a sample is a thread waiting (see `_IDLE`)."""
    for frame in reversed(frames):
        func = frame.split(" (", 1)[0]
        if func.startswith("0x"):  # an unresolved address (libc): look further out
            continue
        return bool(_IDLE.match(func))
    return False


def classify_stack(frames: list[str]) -> str:
    """The component of one sample: its innermost non-transparent frame (root first)."""
    for frame in reversed(frames):
        component = classify_frame(frame)
        if component is not None:
            return component
    return "event loop"


def summarise(raw: Path) -> tuple[dict[str, float], int]:
    """Shares (0..1) of each component in a `py-spy --format raw` file, and the sample count."""
    counts: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if not idle(frames):
            counts[classify_stack(frames)] += int(count)
    total = sum(counts.values())
    return {c: counts[c] / total if total else 0.0 for c in COMPONENTS}, total


def record(
    pids: dict[str, int], seconds: float, out_dir: Path, *, rate: int = 200
) -> dict[str, subprocess.Popen[bytes]]:
    """Start one `py-spy record` per process (native frames included);
    each writes `<name>.txt` into `out_dir` when `seconds` have passed."""
    beside = Path(sys.executable).parent / "py-spy"  # the venv's, when run from it
    exe = str(beside) if beside.exists() else shutil.which("py-spy")
    if exe is None:
        raise SystemExit("py-spy is not installed (it is in the dev group: ./scripts/setup)")
    out_dir.mkdir(parents=True, exist_ok=True)
    running = {}
    for name, pid in pids.items():
        argv = [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--full-filenames",
            "--native",  # (py-spy pauses the process per sample to unwind native frames)
            "--output",
            str(out_dir / f"{name}.txt"),
        ]
        running[name] = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=(out_dir / f"{name}.log").open("wb")
        )
    return running


def report(results: dict[str, dict[str, dict[str, object]]]) -> None:
    """One table per profiled load: each process's CPU per request by component (ms, share)."""
    for spec, processes in results.items():
        names = list(processes)
        print(f"\nprofile {spec}: CPU ms per request by component (share of the samples)")
        print("| component | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for component in COMPONENTS:
            cells = []
            for name in names:
                p = processes[name]
                share = p["shares"][component]  # type: ignore[index]
                cells.append(f"{share * p['cpu_ms']:.2f} ({share:.0%})")  # type: ignore[operator]
            print(f"| {component} | " + " | ".join(cells) + " |")
        totals = " | ".join(
            f"**{processes[n]['cpu_ms']:.2f}** ({processes[n]['samples']} samples)" for n in names
        )
        print(f"| total | {totals} |")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each of a process's threads so far, summed by thread name (Linux /proc):
    shows what py-spy cannot (gRPC's C-core threads hold no Python frames)."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = re.sub(r"[-_ ]?\d+$", "", name) or name  # "default-executo" / "grpc_global_tim"
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


_PY_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*\.py):\d+\)$")


def inclusive(raw: Path) -> tuple[dict[str, float], int]:
    """Each Python function's inclusive share (0..1) of the busy (non-idle) samples in a
    `py-spy --format raw` file, keyed `name (path)` with the path cut after site-packages/ or
    switchyard/; and the busy sample count."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if idle(frames):
            continue
        total += int(count)
        seen: set[str] = set()
        for frame in frames:
            match = _PY_FRAME.match(frame)
            if match is None:
                continue
            path = match["file"].split("/site-packages/")[-1].split("/switchyard/")[-1]
            key = f"{match['name']} ({path})"
            if key not in seen:
                seen.add(key)
                counts[key] += int(count)
    return ({k: v / total for k, v in counts.items()} if total else {}), total


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description="inclusive share of each Python function")
    parser.add_argument("raw", type=Path, help="a py-spy --format raw file")
    parser.add_argument("--match", default="", help="only functions whose key matches")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    shares, total = inclusive(args.raw)
    print(f"{total} busy samples")
    pattern = re.compile(args.match)
    rows = [(v, k) for k, v in shares.items() if pattern.search(k)]
    for share, key in sorted(rows, reverse=True)[: args.top]:
        print(f"{share * 100:5.1f}%  {key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
