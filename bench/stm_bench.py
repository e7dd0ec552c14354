"""Short-term-memory benchmark: GraphQL vs plain JSON vs in-process, GraphQL writes on one and
two workers, context latency vs session length, WebSocket fan-out and server memory, printed side
by side with their targets.

    uv run python -m bench.stm_bench [--only api|fanout] [--baseline DIR] [--profile DIR]
                                     [--ws IMPL]

Uses REDIS_URL when set, else starts a throwaway redis-server. Servers run in their own
processes, tracing off; this process is the load generator. Sections 1 and 1b start servers of
their own (see bench.api_sections), as does the fan-out section (see bench.fanout_sections);
section 2 uses one uvicorn worker serving the bench app.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import psutil
import uvloop
from redis.asyncio import Redis

from bench.api_sections import CONTENT, SERVER_ENV, ApiSections, gql_context
from bench.driver import CpuMeter, closed_loop
from bench.fanout_sections import FanoutSections
from bench.http_load import HttpConnection, http_op, open_connections
from bench.processes import HOST, BenchRedis, BenchServer
from bench.stats import LoadResult, Target, fmt, table
from maas.app import build_stm, llm_config
from maas.auth import LOCAL_TENANT
from maas.settings import Settings
from services.llm import LLMGateway
from services.stm import ShortTermMemory
from services.stm_model import NewMessage, Role
from stores.event_bus import RedisEventBus

CLIENTS = 32
LENGTH_WARMUP_S = 1.0
LENGTH_DURATION_S = 3.0
POPULATE_BATCH = 500


# --- helpers --------------------------------------------------------------------------------


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE (children inherit it); return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_machine(redis_url: str, external_redis: bool) -> None:
    from importlib.metadata import version

    import uvicorn
    import websockets

    print("== Machine")
    print(
        f"  cores: {os.cpu_count()} logical / {psutil.cpu_count(logical=False)} physical"
        f" ({cpu_model()}), RAM {psutil.virtual_memory().total / 2**30:.1f} GiB"
    )
    print(
        f"  Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}"
    )
    print(
        f"  strawberry-graphql {version('strawberry-graphql')}, starlette {version('starlette')},"
        f" uvicorn {uvicorn.__version__}, uvloop {uvloop.__version__},"
        f" httptools {version('httptools')}, websockets {websockets.__version__},"
        f" redis-py {version('redis')}"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"  load average before the run: {load} (other processes share these cores)")
    print(
        f"  Redis: {'REDIS_URL (external)' if external_redis else 'throwaway redis-server'}"
        f" at {redis_url}"
    )
    print()


def result_rows(results: Sequence[LoadResult]) -> list[list[str]]:
    return [
        [
            r.name,
            fmt(r.rps, 0),
            fmt(r.p50_ms, 2),
            fmt(r.p99_ms, 2),
            fmt(r.max_ms, 1),
            str(r.errors),
            fmt(r.client_us, 0),
            f"{r.client_cpu_s / r.duration_s:.0%}",
            fmt(r.server_us, 0),
            fmt(r.redis_us, 0),
        ]
        for r in results
    ]


RESULT_HEADERS = [
    "case",
    "req/s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "errors",
    "client us/req",
    "client CPU",
    "server us/req",
    "redis us/req",
]


def check(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(what)


# --- the benchmark --------------------------------------------------------------------------


class Bench:
    def __init__(self, redis: BenchRedis, server: BenchServer, args: argparse.Namespace) -> None:
        self.redis = redis
        self.server = server
        self.only = args.only
        self.args = args
        self.fanout_rss: list[tuple[str, float]] = []
        self.api_rss: list[tuple[str, float]] = []
        self.run = uuid.uuid4().hex[:6]
        self.meter = CpuMeter(server.pid, redis.pid)
        self.targets: list[Target] = []
        self.rss: list[tuple[str, float]] = []
        self.stm: ShortTermMemory | None = None

    def sid(self, name: str) -> str:
        return f"bench-{self.run}-{name}"

    def note_rss(self, label: str) -> None:
        self.rss.append((label, self.server.rss_mb()))

    async def http_case(
        self, name: str, requests: Sequence[bytes], *, graphql: bool, warmup: float, duration: float
    ) -> LoadResult:
        connections = await open_connections(HOST, self.server.port, len(requests))
        try:
            ops = [
                http_op(c, raw, graphql=graphql)
                for c, raw in zip(connections, requests, strict=True)
            ]
            return await closed_loop(
                name, ops, warmup_s=warmup, duration_s=duration, meter=self.meter
            )
        finally:
            for connection in connections:
                connection.close()

    async def populate(self, session_id: str, count: int) -> None:
        assert self.stm is not None
        for start in range(0, count, POPULATE_BATCH):
            batch = [
                NewMessage(
                    role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
                    content=f"{CONTENT} (message {i})",
                )
                for i in range(start, min(count, start + POPULATE_BATCH))
            ]
            await self.stm.add_messages(LOCAL_TENANT, session_id, batch)

    async def validate(self) -> None:
        """The two sessions of section 2 answer through GraphQL, with the same window."""
        connection = await HttpConnection.open(HOST, self.server.port)
        try:
            windows = []
            for name in ("ctx-100", "ctx-10k"):
                status, body = await connection.request(gql_context(self.sid(name)))
                check(status == 200 and b'"errors"' not in body, f"GraphQL context: {body[:300]!r}")
                windows.append(json.loads(body)["data"]["session"]["context"]["messages"])
            check([len(w) for w in windows] == [50, 50], "expected two 50-message windows")
        finally:
            connection.close()

    async def section_length(self) -> None:
        print(
            "== 2. Context latency vs session length (GraphQL over HTTP, sliding_window, "
            f"50-message window; {LENGTH_WARMUP_S:g} s + {LENGTH_DURATION_S:g} s per case)"
        )
        results: dict[tuple[str, int], LoadResult] = {}
        for clients in (1, CLIENTS):
            for label, name in (("100", "ctx-100"), ("10,000", "ctx-10k")):
                results[label, clients] = await self.http_case(
                    f"{label}-message session, {clients} client{'s' if clients > 1 else ''}",
                    [gql_context(self.sid(name))] * clients,
                    graphql=True,
                    warmup=LENGTH_WARMUP_S,
                    duration=LENGTH_DURATION_S,
                )
        print(table(RESULT_HEADERS, result_rows(list(results.values()))))
        print()
        verdicts = []
        for clients in (1, CLIENTS):
            short, long = results["100", clients], results["10,000", clients]
            p50, p99 = long.p50_ms / short.p50_ms, long.p99_ms / short.p99_ms
            verdicts.append((clients, p50, p99))
            print(
                f"  10,000 / 100 messages, {clients:>2} client(s): p50 {p50:.2f}x, "
                f"p99 {p99:.2f}x (target <= 1.2x)"
            )
        print()
        _, p50, p99 = verdicts[0]
        self.targets.append(
            Target(
                "context 10k/100-msg latency, 1 client, p50 / p99 <= 1.2x",
                f"{p50:.2f}x / {p99:.2f}x",
                p50 <= 1.2 and p99 <= 1.2,
            )
        )

    async def section_api(self) -> None:
        assert self.stm is not None
        args = self.args
        with tempfile.TemporaryDirectory(prefix="maas-bench-logs-") as logs:
            sections = ApiSections(
                self.redis.url,
                self.redis.pid,
                self.run,
                self.stm,
                baseline=args.baseline,
                profile=args.profile,
                log_dir=Path(logs),
            )
            await sections.cost()
            await sections.workers()
        self.targets += sections.targets
        self.api_rss = sections.rss

    async def section_fanout(self) -> None:
        args = self.args
        sections = FanoutSections(
            self.redis.url, self.run, ws=args.ws, baseline=args.baseline, profile=args.profile
        )
        await sections.one_event()
        await sections.sustained()
        self.targets += sections.targets
        self.fanout_rss = sections.rss

    async def main(self) -> None:
        settings = Settings(
            redis_url=self.redis.url, llm_api_key=None, api_keys={}, stm_session_ttl_seconds=0
        )
        redis = Redis.from_url(self.redis.url)
        llm = LLMGateway(llm_config(settings))
        events = RedisEventBus(redis)
        self.stm = build_stm(settings, redis, events, llm)
        try:
            if self.only in (None, "api"):
                await self.section_api()
            if self.only is None:
                began = time.perf_counter()
                await self.populate(self.sid("ctx-100"), 100)
                await self.populate(self.sid("ctx-10k"), 10_000)
                took = time.perf_counter() - began
                print(
                    f"  (populated 100- and 10,000-message sessions in {took:.1f} s, in-process, "
                    f"batches of {POPULATE_BATCH})"
                )
                print()
                await self.validate()
                await self.section_length()
                self.note_rss("after HTTP load (section 2)")
            if self.only in (None, "fanout"):
                await self.section_fanout()
        finally:
            await self.stm.close()
            await events.close()
            await llm.close()
            await redis.aclose()

    def print_memory(self) -> None:
        print("== 4. Server process memory (RSS; one worker, tracing off)")
        for label, mb in self.rss:
            print(f"  {label:<60} {mb:7.1f} MB")
        if self.api_rss:
            print("  section 1 servers:")
            for label, mb in self.api_rss:
                print(f"  {label:<60} {mb:7.1f} MB")
        if self.fanout_rss:
            print("  fan-out servers (section 3, one worker each):")
            for label, mb in self.fanout_rss:
                print(f"  {label:<60} {mb:7.1f} MB")
        print()
        idle = self.rss[0][1]
        self.targets.append(
            # Issue 11: under 250 MB with the local embedder loaded.
            Target("server RSS idle after start-up < 250 MB", f"{idle:.1f} MB", idle < 250)
        )

    def print_summary(self) -> None:
        print("== Summary")
        rows = [[t.name, t.measured, "MET" if t.met else "NOT MET"] for t in self.targets]
        print(table(["target", "measured", "verdict"], rows))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stm_bench", description=__doc__)
    parser.add_argument(
        "--only",
        choices=["api", "fanout"],
        help="run only sections 1 and 1b (api: GraphQL vs plain vs in-process, 1 vs 2 workers) "
        "or section 3 (fanout), and the memory lines",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also run section 1 and the fan-out with the server code in this directory (e.g. "
        "from `git archive <rev> | tar -x -C DIR`), for before/after figures from one run",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record py-spy flame graphs of section 1's servers and the one-worker fan-out "
        "servers into this directory (sampling slows them: take figures from a run without it)",
    )
    parser.add_argument(
        "--ws",
        choices=["websockets-sansio", "websockets", "wsproto"],
        help="uvicorn's WebSocket implementation for the fan-out servers (default: uvicorn's)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    limit = raise_open_files_limit()
    external = bool(os.environ.get("REDIS_URL"))
    redis = BenchRedis()
    server: BenchServer | None = None
    try:
        url = redis.start()
        print_machine(url, external)
        server = BenchServer(url, env=SERVER_ENV)
        server.start()
        time.sleep(1.0)
        bench = Bench(redis, server, args)
        bench.note_rss("idle after start-up")
        print(f"  server pid {server.pid} on port {server.port}, open-files limit {limit}")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(bench.main())
        bench.print_memory()
        bench.print_summary()
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\n(total {time.perf_counter() - started:.0f} s; load average after: {load})")
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.stop()
        redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
