"""Start-up benchmark: `maas serve` on the embedded defaults, from launch to /health, idle memory
and shutdown, printed with their targets; with --baseline, another checkout's code side by side.

    uv run python -m bench.startup_bench [--baseline DIR] [--rounds N] [--tracing on|off|both]

Each round starts `python -m maas serve` with no REDIS_URL (so it starts its embedded
redis-server), a fresh DATA_DIR, no LLM and no API keys, and measures:
- wall time from launch to the first 200 from /health (long-term memory is ready by then: the
  lifespan loads the embedder and opens the vector store before the server listens);
- CPU (user + system) of the maas process itself at that moment (redis-server not included);
- its resident memory 2 s later (anonymous and file-backed parts: mapped model weights are
  file-backed, shared and reclaimable);
- how long it takes to exit after SIGTERM.
The model's own share is measured apart, in a fresh process: resident memory added by loading
all-MiniLM-L6-v2 and embedding one text.

Figures are medians over the rounds. A baseline directory holds another revision's files (e.g.
`git archive <rev> | tar -x -C DIR`); its code runs on this environment's dependencies. Start-up
CPU depends on whether the dependencies' bytecode is cached (`uv sync` writes it, see
pyproject.toml; with PYTHONDONTWRITEBYTECODE and no cache, every start compiles them again):
the header says which.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.processes import HOST, free_port
from bench.stats import Target, table

CPU_TARGET_S = 3.0
RSS_TARGET_MB = 250.0
SHUTDOWN_TARGET_S = 1.0
IDLE_WAIT_S = 2.0
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
THIS = Path(__file__).resolve().parent.parent
# Run in a fresh process with a checkout's code: the model's resident share (load + one text).
MODEL_PROBE = """
import json, sys
def rss():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon", "RssFile")}
import numpy, tokenizers, safetensors.numpy  # the libraries, not the model
from services.embeddings import minilm
before = rss()
encoder = minilm.MiniLMEncoder.load()
encoder.encode(["What does the user like to drink in the morning?"])
after = rss()  # while the encoder is alive
print(json.dumps({k: after[k] - before[k] for k in after}))
"""


@dataclass(frozen=True)
class Round:
    wall_s: float
    cpu_s: float
    rss_mb: float
    anon_mb: float
    file_mb: float
    shutdown_s: float


def server_env(data_dir: str, tracing: bool) -> dict[str, str]:
    """This environment without the settings that would leave the embedded defaults."""
    dropped = {"REDIS_URL", "LLM_API_KEY", "LLM_BASE_URL", "API_KEYS", "EMBEDDING_PROVIDER"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        HOST=HOST,
        DATA_DIR=data_dir,
        OTEL_SDK_DISABLED="false" if tracing else "true",
        LOG_LEVEL="WARNING",
    )
    return env


def memory_mb(pid: int) -> tuple[float, float, float]:
    """VmRSS, RssAnon and RssFile of a process, in MB."""
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon", "RssFile"))  # type: ignore[return-value]


def one_round(code: Path, tracing: bool) -> Round:
    with tempfile.TemporaryDirectory(prefix="maas-startup-") as data_dir:
        port = free_port()
        env = server_env(data_dir, tracing) | {"PORT": str(port)}
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "maas", "serve"],
            cwd=code,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wall = wait_healthy(process, port) - started
            times = psutil.Process(process.pid).cpu_times()
            cpu = times.user + times.system
            time.sleep(IDLE_WAIT_S)
            rss, anon, file = memory_mb(process.pid)
            stopping = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=STOP_TIMEOUT_S)
            shutdown = time.perf_counter() - stopping
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return Round(wall, cpu, rss, anon, file, shutdown)


def wait_healthy(process: subprocess.Popen[bytes], port: int) -> float:
    """The moment /health first answered 200."""
    deadline = time.perf_counter() + START_TIMEOUT_S
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"maas serve exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=1) as reply:
                if reply.status == 200:
                    return time.perf_counter()
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("maas serve did not answer /health in time")


def model_share(code: Path) -> dict[str, float]:
    """Resident MB the model adds in a fresh process (VmRSS, RssAnon, RssFile)."""
    output = subprocess.run(
        [sys.executable, "-c", MODEL_PROBE],
        cwd=code,
        env={k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
        | {"OPENBLAS_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def medians(rounds: Sequence[Round]) -> Round:
    return Round(
        **{f: statistics.median(getattr(r, f) for r in rounds) for f in Round.__dataclass_fields__}
    )


def bytecode_cached() -> bool:
    """Whether a dependency imported at start-up has its bytecode cached (redis-py as the
    sample: a top-level package, found without importing anything)."""
    spec = importlib.util.find_spec("redis")
    return bool(spec and spec.cached and Path(spec.cached).is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup_bench", description=__doc__)
    parser.add_argument("--baseline", type=Path, help="another checkout's files, run first")
    parser.add_argument("--rounds", type=int, default=3, help="starts per configuration (3)")
    parser.add_argument(
        "--tracing",
        choices=["on", "off", "both"],
        default="both",
        help="OTEL_SDK_DISABLED=false (the default setting), true, or each in turn",
    )
    args = parser.parse_args(argv)
    print("== Machine")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"  cores: {os.cpu_count()}, load average {load} (other processes share these cores)")
    print(
        f"  dependencies' bytecode cached: {'yes' if bytecode_cached() else 'no'}; "
        f"PYTHONDONTWRITEBYTECODE={'set' if os.environ.get('PYTHONDONTWRITEBYTECODE') else 'unset'}"
    )
    checkouts = [("baseline", args.baseline.resolve())] if args.baseline else []
    checkouts.append(("this", THIS))
    tracing_modes = {"on": [True], "off": [False], "both": [True, False]}[args.tracing]
    results: dict[tuple[str, bool], Round] = {}
    for tracing in tracing_modes:
        for name, code in checkouts:
            rounds = [one_round(code, tracing) for _ in range(args.rounds)]
            results[name, tracing] = medians(rounds)
            label = f"{name}, tracing {'on' if tracing else 'off'}"
            print(f"  {label}: " + ", ".join(f"{r.cpu_s:.2f}" for r in rounds) + " s CPU")
    shares = {name: model_share(code) for name, code in checkouts}
    print()
    print_table(results, checkouts, tracing_modes, shares)
    return 0


def print_table(
    results: dict[tuple[str, bool], Round],
    checkouts: list[tuple[str, Path]],
    tracing_modes: list[bool],
    shares: dict[str, dict[str, float]],
) -> None:
    print("== Start-up of `maas serve` on the embedded defaults (medians)")
    headers = ["figure (target)"]
    columns = []
    for tracing in tracing_modes:
        for name, _ in checkouts:
            headers.append(f"{name}, tracing {'on' if tracing else 'off'}")
            columns.append(results[name, tracing])
    rows = [
        ["wall to /health 200", *(f"{r.wall_s:.2f} s" for r in columns)],
        [f"CPU to /health 200 (<= {CPU_TARGET_S:.0f} s)", *(f"{r.cpu_s:.2f} s" for r in columns)],
        [f"idle RSS (< {RSS_TARGET_MB:.0f} MB)", *(f"{r.rss_mb:.0f} MB" for r in columns)],
        ["  of which anonymous", *(f"{r.anon_mb:.0f} MB" for r in columns)],
        ["  of which file-backed", *(f"{r.file_mb:.0f} MB" for r in columns)],
        [
            f"shutdown on SIGTERM (<= {SHUTDOWN_TARGET_S:.0f} s)",
            *(f"{r.shutdown_s:.2f} s" for r in columns),
        ],
    ]
    print(table(headers, rows))
    for name, share in shares.items():
        print(
            f"  model's share ({name}): {share['VmRSS']:.0f} MB resident after loading and one "
            f"text ({share['RssAnon']:.0f} MB anonymous, {share['RssFile']:.0f} MB file-backed)"
        )
    print()
    print("== Summary (this checkout)")
    targets = []
    for tracing in tracing_modes:
        r = results["this", tracing]
        mode = f"tracing {'on' if tracing else 'off'}"
        targets += [
            Target(f"CPU to ready, {mode}", f"{r.cpu_s:.2f} s", r.cpu_s <= CPU_TARGET_S),
            Target(f"idle RSS, {mode}", f"{r.rss_mb:.0f} MB", r.rss_mb < RSS_TARGET_MB),
            Target(f"shutdown, {mode}", f"{r.shutdown_s:.2f} s", r.shutdown_s <= SHUTDOWN_TARGET_S),
        ]
    rows = [[t.name, t.measured, "MET" if t.met else "NOT MET"] for t in targets]
    print(table(["target", "measured", "verdict"], rows))


if __name__ == "__main__":
    sys.exit(main())
