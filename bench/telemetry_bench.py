"""Tracing cost benchmark: the same `maas serve` with tracing off (a), with tracing on and no
collector listening (b), and with tracing on exporting to a live OTLP/HTTP receiver (c), side by
side in one run (about 2.5 minutes).

    uv run python -m bench.telemetry_bench [--rounds N]

Each configuration is a real `python -m maas serve` process (one worker), all three on one
throwaway redis-server (REDIS_URL when set). After one unmeasured start that compiles the
modules (see Bench.warm_up), the three start one after another (time from process start to the
first /health 200: the start-up cost of instrumentation) and stay up. Then, in rounds, each in
turn serves a closed loop of GraphQL `addMessages` writes and then of context reads of a
100-message session over HTTP; the order rotates from round to round, so drift on a shared
machine touches all three alike. Each process gets SIGTERM right after its last load (timed: the
buffered spans are flushed at shutdown), and each configuration starts and stops once more, idle.
The summary pools the rounds and prints each configuration's ratio to tracing off.

The receiver is the test suite's OtlpReceiver, run in a child process so that decoding spans
neither takes this process's GIL (the load generator) nor hides in its CPU figures; it counts
the spans (c) exported, against the /graphql requests (c) answered.

Last, the targets of tracing's cost (issue 11), each met or not: with a collector, at most 10 %
of write throughput (and of server CPU per write); with none, the process says so once and
costs next to nothing (at most 5 % of server CPU per write); shutdown within 1 s, right after
load or idle, collector or not. Tracing's log lines are counted per process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil
import uvloop

from bench.api_sections import ADD_MUTATION, CONTENT, gql_context, gql_write
from bench.driver import CpuMeter, Operation, closed_loop
from bench.http_load import HttpConnection, encode_json_post, http_op, open_connections
from bench.processes import (
    HOST,
    START_TIMEOUT_S,
    BenchRedis,
    BenchServer,
    _die_with_parent,
    free_port,
)
from bench.stats import LoadResult, fmt, table
from bench.stm_bench import print_machine, raise_open_files_limit

CLIENTS = 32
ROUNDS = 3
WARMUP_S = 1.0
DURATION_S = 4.0
CONTEXT_MESSAGES = 100
CONTEXT_WINDOW = 50  # sliding_window's default: what a context read returns
HEALTH_POLL_S = 0.01
STOP_GRACE_S = 30.0  # Docker waits 10 s before SIGKILL
COLLECTOR_TIMEOUT_S = 30.0
# Targets (issue 11). Ratios are to tracing off, pooled over the rounds.
MAX_COST_WITH_COLLECTOR = 0.10  # of write throughput, and of server CPU per write
MAX_COST_WITHOUT_COLLECTOR = 0.05  # of server CPU per write
MAX_SHUTDOWN_S = 1.0
TRACING_LOGGERS = ("maas.telemetry", "opentelemetry", "openlit")
NOISE = ("NO API KEYS CONFIGURED",)  # a log line every configuration prints at start


@dataclass(frozen=True)
class Config:
    key: str
    name: str
    tracing: bool
    collector: bool


CONFIGS = (
    Config("a", "tracing off", tracing=False, collector=False),
    Config("b", "no collector", tracing=True, collector=False),
    Config("c", "collector up", tracing=True, collector=True),
)


@dataclass
class Instance:
    """One configuration's server process in the load phase, and what it measured."""

    config: Config
    server: MaasServe
    meter: CpuMeter
    sent: list[int] = field(default_factory=lambda: [0])  # /graphql requests, checks included
    writes: list[LoadResult] = field(default_factory=list)
    reads: list[LoadResult] = field(default_factory=list)


@dataclass
class Process:
    """Start-up and shutdown of one server process."""

    config: Config
    start_s: float
    stop_s: float
    killed: bool
    after_load: bool
    logs: Counter[str]


# --- processes ------------------------------------------------------------------------------


class MaasServe(BenchServer):
    """`python -m maas serve` (one worker) with the given OTEL_* settings, its log in a file,
    compiled bytecode kept under `pycache` (as the Docker image has it; see Bench.warm_up).
    start() records start_s, the time from process start to the first /health 200; stop()
    records stop_s, from SIGTERM to exit, and whether it had to be killed after STOP_GRACE_S."""

    def __init__(self, redis_url: str, otel: dict[str, str], log_path: Path, pycache: Path) -> None:
        super().__init__(redis_url, app="maas.app:create_app")
        self.otel = otel
        self.log_path = log_path
        self.pycache = pycache
        self.start_s = math.nan
        self.stop_s = math.nan
        self.killed = False

    def _env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in super()._env().items()
            if not k.startswith("OTEL_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        env.update(self.otel, HOST=HOST, PORT=str(self.port), LOG_LEVEL="WARNING")
        env.update(PYTHONPYCACHEPREFIX=str(self.pycache))
        return env

    def start(self) -> None:
        self.port = free_port()
        began = time.perf_counter()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "maas", "serve", "--workers", "1"],
                env=self._env(),
                cwd=Path(__file__).resolve().parent.parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                process_group=0,  # Ctrl-C reaches only us; we stop the server ourselves
                preexec_fn=_die_with_parent(),
            )
        url = f"http://{HOST}:{self.port}/health"
        deadline = began + START_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"maas serve exited with code {self._process.returncode}")
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    self.start_s = time.perf_counter() - began
                    return
            time.sleep(HEALTH_POLL_S)
        raise RuntimeError("maas serve did not answer /health in time")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        began = time.perf_counter()
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            self.killed = True
        self.stop_s = time.perf_counter() - began


def _collector_main(conn: Connection) -> None:
    """The child process: serve OtlpReceiver; on each "take", send the names of the spans
    received since the last one (and forget them)."""
    from tests.support.otlp_receiver import OtlpReceiver

    receiver = OtlpReceiver().start()
    conn.send(receiver.base_url)
    with contextlib.suppress(EOFError, KeyboardInterrupt):
        while conn.recv() == "take":
            count = len(receiver.spans)  # the receiver only appends: [0, count) is stable
            names = Counter(span.name for span in receiver.spans[:count])
            roots = sum(1 for span in receiver.spans[:count] if not span.parent_span_id)
            del receiver.spans[:count]
            conn.send((names, roots))
    receiver.stop()


class Collector:
    """An OTLP/HTTP receiver (tests.support.otlp_receiver) in a child process."""

    def __init__(self) -> None:
        self.url = ""
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    def start(self) -> str:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_collector_main, args=(child,), daemon=True)
        self._process.start()
        self.url = self._receive()
        return self.url

    def _receive(self) -> Any:
        assert self._conn is not None
        if not self._conn.poll(COLLECTOR_TIMEOUT_S):
            raise RuntimeError("the OTLP receiver did not answer")
        return self._conn.recv()

    def take(self) -> tuple[Counter[str], int]:
        """Span names received since the last take, with their counts, and how many of those
        spans were roots (one per /graphql request: its operation's span)."""
        assert self._conn is not None
        self._conn.send("take")
        return self._receive()

    def cpu_s(self) -> float:
        assert self._process is not None
        assert self._process.pid is not None
        times = psutil.Process(self._process.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send("stop")
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None


def log_summary(path: Path) -> Counter[str]:
    """The server's log lines, counted by logger and message (the start-up warning left out)."""
    lines: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip() or any(noise in line for noise in NOISE):
            continue
        try:
            entry = json.loads(line)
            lines[f"{entry['level']} {entry['logger']}: {entry['message'][:90]}"] += 1
        except (ValueError, KeyError, TypeError):
            lines[line[:110]] += 1
    return lines


# --- load -----------------------------------------------------------------------------------


def counted(op: Operation, tally: list[int]) -> Operation:
    async def run() -> bool:
        tally[0] += 1
        return await op()

    return run


async def load_case(
    name: str, port: int, requests: Sequence[bytes], meter: CpuMeter, tally: list[int]
) -> LoadResult:
    connections = await open_connections(HOST, port, len(requests))
    try:
        ops = [
            counted(http_op(c, raw, graphql=True), tally)
            for c, raw in zip(connections, requests, strict=True)
        ]
        return await closed_loop(name, ops, warmup_s=WARMUP_S, duration_s=DURATION_S, meter=meter)
    finally:
        for connection in connections:
            connection.close()


def populate_request(session_id: str) -> bytes:
    messages = [
        {"role": "USER" if i % 2 == 0 else "ASSISTANT", "content": f"{CONTENT} (message {i})"}
        for i in range(CONTEXT_MESSAGES)
    ]
    variables = {"input": {"sessionId": session_id, "messages": messages}}
    return encode_json_post("/graphql", {"query": ADD_MUTATION, "variables": variables})


async def check_server(port: int, context_id: str, populate: bool, tally: list[int]) -> None:
    """A context read answers with the full window (after populating the session, if asked)."""
    connection = await HttpConnection.open(HOST, port)
    try:
        if populate:
            status, body = await connection.request(populate_request(context_id))
            tally[0] += 1
            if status != 200 or b'"errors"' in body:
                raise RuntimeError(f"populating the context session: {status} {body[:300]!r}")
        status, body = await connection.request(gql_context(context_id))
        tally[0] += 1
        reply = json.loads(body)
        if status != 200 or "errors" in reply:
            raise RuntimeError(f"context read: {status} {body[:300]!r}")
        got = len(reply["data"]["session"]["context"]["messages"])
        if got != CONTEXT_WINDOW:
            raise RuntimeError(f"context read returned {got} messages, not {CONTEXT_WINDOW}")
    finally:
        connection.close()


class Bench:
    def __init__(self, redis: BenchRedis, collector: Collector, runner: asyncio.Runner) -> None:
        self.redis = redis
        self.collector = collector
        self.runner = runner
        self.run_id = uuid.uuid4().hex[:6]
        self.context_id = f"tbench-{self.run_id}-ctx"
        self.closed_endpoint = f"http://{HOST}:{free_port()}"  # nothing listens there
        self.logs = Path(tempfile.mkdtemp(prefix="maas-telemetry-bench-"))
        self.pycache = self.logs / "pycache"
        self.cold_start_s = math.nan
        self.instances: dict[str, Instance] = {}
        self.processes: list[Process] = []
        self.spans_after_load: Counter[str] = Counter()
        self.roots_after_load = 0
        self.spans_idle: Counter[str] = Counter()
        self.collector_cpu_s = 0.0

    def otel_env(self, config: Config) -> dict[str, str]:
        endpoint = self.collector.url if config.collector else self.closed_endpoint
        return {
            "OTEL_SDK_DISABLED": "false" if config.tracing else "true",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        }

    def launch(self, config: Config, label: str) -> MaasServe:
        log = self.logs / f"{label}.log"
        server = MaasServe(self.redis.url, self.otel_env(config), log, self.pycache)
        server.start()
        return server

    def finish(self, config: Config, server: MaasServe, *, after_load: bool) -> None:
        server.stop()
        logs = log_summary(server.log_path)
        server.log_path.unlink()
        self.processes.append(
            Process(config, server.start_s, server.stop_s, server.killed, after_load, logs)
        )

    async def load(self, instance: Instance, round_: int) -> None:
        port = instance.server.port
        tag = f"tbench-{self.run_id}-{instance.config.key}{round_}"
        writes = [gql_write(f"{tag}-w{i}") for i in range(CLIENTS)]
        reads = [gql_context(self.context_id)] * CLIENTS
        meter, sent = instance.meter, instance.sent
        instance.writes.append(await load_case("writes", port, writes, meter, sent))
        instance.reads.append(await load_case("context reads", port, reads, meter, sent))

    def warm_up(self) -> None:
        """Start and stop one tracing-on server, unmeasured, so that every measured start finds
        its modules compiled: the Docker image compiles them at build time (UV_COMPILE_BYTECODE),
        and a development venv keeps them in __pycache__ unless PYTHONDONTWRITEBYTECODE is set.
        Without this, the first start would pay for compiling the modules the others share."""
        config = CONFIGS[2]  # its import set includes the others'
        print(f"  warm-up: ({config.key}) {config.name}, unmeasured ...", end="", flush=True)
        server = self.launch(config, "warm-up")
        server.stop()
        server.log_path.unlink()
        self.collector.take()
        self.cold_start_s = server.start_s
        print(f" /health after {server.start_s:.2f} s with no compiled bytecode", flush=True)

    def main(self) -> None:
        print(
            f"== {len(CONFIGS)} configurations, each a `maas serve` process (one worker), all on "
            "one redis-server:"
        )
        for config in CONFIGS:
            endpoint = self.otel_env(config)["OTEL_EXPORTER_OTLP_ENDPOINT"]
            detail = f"endpoint {endpoint}" if config.tracing else "OTEL_SDK_DISABLED=true"
            extra = " (a closed port)" if config.tracing and not config.collector else ""
            print(f"   ({config.key}) {config.name}: {detail}{extra}")
        print(
            f"   The three start one after another and stay up; then {ROUNDS} rounds, each "
            f"running the three in turn (rotating order):\n   {CLIENTS} clients doing writes, "
            f"then context reads of a {CONTEXT_MESSAGES}-message session, {WARMUP_S:g} s "
            f"warm-up + {DURATION_S:g} s measured each.\n   Each process gets SIGTERM right after "
            "its last load; then each configuration starts once more and stops idle."
        )
        print()
        self.warm_up()
        collector_cpu = self.collector.cpu_s()
        for config in CONFIGS:
            print(f"  starting ({config.key}) {config.name} ...", end="", flush=True)
            server = self.launch(config, f"{config.key}-load")
            meter = CpuMeter(server.pid, self.redis.pid)
            self.instances[config.key] = instance = Instance(config, server, meter)
            first = config == CONFIGS[0]
            self.runner.run(check_server(server.port, self.context_id, first, instance.sent))
            print(f" /health after {server.start_s:.2f} s", flush=True)
        try:
            for round_ in range(ROUNDS):
                shift = round_ % len(CONFIGS)
                for config in (*CONFIGS[shift:], *CONFIGS[:shift]):
                    instance = self.instances[config.key]
                    self.runner.run(self.load(instance, round_))
                    w, r = instance.writes[-1], instance.reads[-1]
                    line = f"  round {round_ + 1}: ({config.key}) {w.rps:,.0f} writes/s, "
                    line += f"{r.rps:,.0f} reads/s"
                    if round_ == ROUNDS - 1:
                        self.finish(config, instance.server, after_load=True)
                        line += f"; stopped in {instance.server.stop_s:.2f} s"
                        if config.collector:
                            self.spans_after_load, self.roots_after_load = self.collector.take()
                    print(line, flush=True)
        finally:
            for instance in self.instances.values():
                instance.server.stop()
        for config in reversed(CONFIGS):
            server = self.launch(config, f"{config.key}-idle")
            self.finish(config, server, after_load=False)
            print(
                f"  ({config.key}) again: /health after {server.start_s:.2f} s, "
                f"stopped idle in {server.stop_s:.2f} s",
                flush=True,
            )
        self.spans_idle = self.collector.take()[0]
        self.collector_cpu_s = self.collector.cpu_s() - collector_cpu
        print()

    # --- report -----------------------------------------------------------------------------

    def print_rounds(self) -> None:
        headers = ["round", "configuration", "writes/s", "p50 ms", "p99 ms", "srv us/write"]
        headers += ["reads/s", "p50 ms", "p99 ms", "srv us/read", "errors"]
        rows = []
        for round_ in range(ROUNDS):
            for config in CONFIGS:
                instance = self.instances[config.key]
                w, r = instance.writes[round_], instance.reads[round_]
                rows.append(
                    [
                        str(round_ + 1),
                        f"({config.key}) {config.name}",
                        fmt(w.rps, 0),
                        fmt(w.p50_ms, 1),
                        fmt(w.p99_ms, 1),
                        fmt(w.server_us, 0),
                        fmt(r.rps, 0),
                        fmt(r.p50_ms, 1),
                        fmt(r.p99_ms, 1),
                        fmt(r.server_us, 0),
                        str(w.errors + r.errors),
                    ]
                )
        print("== Each round (srv us = the server process's CPU per request)")
        print(table(headers, rows))
        print()

    def summary(self) -> None:
        rows: list[list[str]] = []

        def row(label: str, values: dict[str, str | float], digits: int = 0) -> None:
            cells = [label]
            for config in CONFIGS:
                value = values[config.key]
                cells.append(value if isinstance(value, str) else fmt(value, digits))
            for key in ("b", "c"):
                mine, base = values[key], values["a"]
                numeric = not isinstance(mine, str) and not isinstance(base, str)
                cells.append(f"{mine / base:.2f}x" if numeric and base else "")
            rows.append(cells)

        def processes(config: Config, after_load: bool | None = None) -> list[Process]:
            return [
                p
                for p in self.processes
                if p.config == config and after_load in (None, p.after_load)
            ]

        starts = {c.key: [p.start_s for p in processes(c)] for c in CONFIGS}
        row("start to first /health 200, s (mean of 2)", {k: mean(v) for k, v in starts.items()}, 2)
        row(
            "  each start, s",
            {k: " / ".join(f"{s:.2f}" for s in v) for k, v in starts.items()},
        )
        for after_load, label in ((True, "right after load"), (False, "idle")):
            stops = {c.key: processes(c, after_load)[0] for c in CONFIGS}
            row(f"SIGTERM to exit, {label}, s", {k: p.stop_s for k, p in stops.items()}, 2)
        pooled = {
            key: (pool(instance.writes), pool(instance.reads))
            for key, instance in self.instances.items()
        }
        for index, what in ((0, "write"), (1, "context read")):
            results = {k: v[index] for k, v in pooled.items()}
            row(f"{what}s/s", {k: r.rps for k, r in results.items()})
            row(f"{what} p50 ms", {k: r.p50_ms for k, r in results.items()}, 1)
            row(f"{what} p99 ms", {k: r.p99_ms for k, r in results.items()}, 1)
            row(f"server CPU us per {what}", {k: r.server_us for k, r in results.items()})
        row("errors", {k: str(w.errors + r.errors) for k, (w, r) in pooled.items()})
        spans = {c.key: "-" for c in CONFIGS}
        spans["c"] = f"{sum(self.spans_after_load.values()):,}"
        row("spans received", spans)
        print(
            f"== Summary: {ROUNDS} rounds pooled, {CLIENTS} clients (ratio to tracing off: "
            "> 1 = more time or CPU, < 1 = less throughput)"
        )
        print(table(["measure", *(f"({c.key}) {c.name}" for c in CONFIGS), "b/a", "c/a"], rows))
        print(
            f"  start-up with compiled bytecode cached; the unmeasured warm-up start of (c), "
            f"compiling every module, took {self.cold_start_s:.2f} s"
        )
        if any(p.killed for p in self.processes):
            print(f"  (a process that did not exit within {STOP_GRACE_S:g} s was killed)")
        print()

    def print_spans(self) -> None:
        config = CONFIGS[2]
        names = self.spans_after_load
        sent = self.instances[config.key].sent[0]
        roots = self.roots_after_load
        total = sum(names.values())
        print(f"== Spans at the receiver from ({config.key}) {config.name}'s load process")
        print(
            f"  /graphql requests sent {sent:,} (warm-up and checks included); root spans "
            f"received {roots:,} ({roots / max(sent, 1):.1%}); {total:,} spans in all, "
            f"{total / max(roots, 1):.2f} per request"
        )
        print(
            "  by name, per request: "
            + ", ".join(f"{name} {n / max(roots, 1):.2f}" for name, n in names.most_common(7))
        )
        served = sum(r.count for r in (*self.instances["c"].writes, *self.instances["c"].reads))
        print(
            f"  receiver process CPU (decoding, whole run): {self.collector_cpu_s:.1f} s, about "
            f"{self.collector_cpu_s / max(served, 1) * 1e6:,.0f} us per measured request"
        )
        idle = ", ".join(f"{name} {n}" for name, n in self.spans_idle.most_common(5)) or "none"
        print(f"  from a process started and stopped idle: {idle}")
        print()

    def print_logs(self) -> None:
        print("== Server log lines at WARNING and up (the no-API-keys warning left out)")
        for config in CONFIGS:
            mine = [p for p in self.processes if p.config == config]
            lines: Counter[str] = sum((p.logs for p in mine), Counter())
            counts = " + ".join(str(tracing_lines(p.logs)) for p in mine)
            print(
                f"  ({config.key}) {config.name}, {len(mine)} processes, "
                f"{sum(lines.values())} lines, tracing's: {counts}" + ("" if lines else "; none")
            )
            for line, count in lines.most_common(6):
                print(f"    {count:>3} x {line}")
        print()

    def print_targets(self) -> None:
        """Each target of issue 11, with the figure it is judged on."""
        writes = {key: pool(instance.writes) for key, instance in self.instances.items()}
        a, b, c = writes["a"], writes["b"], writes["c"]
        checks: list[tuple[str, str, bool]] = []
        throughput_cost = 1 - c.rps / a.rps
        checks.append(
            (
                f"collector up: write throughput cost <= {MAX_COST_WITH_COLLECTOR:.0%}",
                f"{throughput_cost:+.1%} ({c.rps:,.0f} vs {a.rps:,.0f} writes/s)",
                throughput_cost <= MAX_COST_WITH_COLLECTOR,
            )
        )
        cpu_cost = (c.server_us or math.nan) / (a.server_us or math.nan) - 1
        checks.append(
            (
                f"collector up: server CPU per write <= +{MAX_COST_WITH_COLLECTOR:.0%}",
                f"{cpu_cost:+.1%} ({c.server_us:,.0f} vs {a.server_us:,.0f} us)",
                cpu_cost <= MAX_COST_WITH_COLLECTOR,
            )
        )
        cpu_cost_b = (b.server_us or math.nan) / (a.server_us or math.nan) - 1
        checks.append(
            (
                f"no collector: server CPU per write <= +{MAX_COST_WITHOUT_COLLECTOR:.0%}",
                f"{cpu_cost_b:+.1%} ({b.server_us:,.0f} vs {a.server_us:,.0f} us; "
                f"{1 - b.rps / a.rps:+.1%} of writes/s)",
                cpu_cost_b <= MAX_COST_WITHOUT_COLLECTOR,
            )
        )
        for config, said, expected in ((CONFIGS[1], "once", 1), (CONFIGS[2], "nothing", 0)):
            counts = [tracing_lines(p.logs) for p in self.processes if p.config == config]
            checks.append(
                (
                    f"({config.key}) {config.name}: tracing's log says {said} per process",
                    " + ".join(f"{n} line{'s' * (n != 1)}" for n in counts),
                    all(n == expected for n in counts),
                )
            )
        for config in CONFIGS[1:]:
            stops = [p.stop_s for p in self.processes if p.config == config]
            checks.append(
                (
                    f"({config.key}) {config.name}: SIGTERM to exit <= {MAX_SHUTDOWN_S:g} s",
                    " / ".join(f"{s:.2f} s" for s in stops) + " (after load / idle)",
                    max(stops) <= MAX_SHUTDOWN_S,
                )
            )
        print("== Targets (issue 11)")
        width = max(len(label) for label, _, _ in checks)
        for label, figure, met in checks:
            print(f"  {label:<{width}}  {figure}: {'met' if met else 'NOT MET'}")
        print()


def tracing_lines(logs: Counter[str]) -> int:
    """Lines from tracing's loggers (ours, the SDK's, OpenLIT's) or about exporting spans."""
    return sum(
        count
        for line, count in logs.items()
        if any(f" {name}" in line for name in TRACING_LOGGERS)
        or "Transient error" in line
        or "/v1/traces" in line
    )


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def pool(results: Sequence[LoadResult]) -> LoadResult:
    """Several load results as one: latencies pooled, durations, counts and CPU summed."""
    return LoadResult(
        name=results[0].name,
        concurrency=results[0].concurrency,
        duration_s=sum(r.duration_s for r in results),
        latencies_s=list(itertools.chain.from_iterable(r.latencies_s for r in results)),
        errors=sum(r.errors for r in results),
        client_cpu_s=sum(r.client_cpu_s for r in results),
        server_cpu_s=sum(r.server_cpu_s or 0.0 for r in results),
        redis_cpu_s=sum(r.redis_cpu_s or 0.0 for r in results),
    )


def main() -> int:
    global ROUNDS
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry_bench", description=__doc__)
    parser.add_argument(
        "--rounds",
        type=int,
        default=ROUNDS,
        help=f"rounds of load (default {ROUNDS}): more average out a busy machine's drift",
    )
    ROUNDS = max(1, parser.parse_args().rounds)
    started = time.perf_counter()
    raise_open_files_limit()
    external = bool(os.environ.get("REDIS_URL"))
    redis = BenchRedis()
    collector = Collector()
    try:
        url = redis.start()
        print_machine(url, external)
        collector.start()
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            bench = Bench(redis, collector, runner)
            try:
                bench.main()
            finally:
                shutil.rmtree(bench.logs, ignore_errors=True)
        bench.print_rounds()
        bench.summary()
        bench.print_spans()
        bench.print_logs()
        bench.print_targets()
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"(total {time.perf_counter() - started:.0f} s; load average after: {load})")
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        collector.stop()
        redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
