"""Short-term-memory benchmark: GraphQL vs plain JSON vs in-process, context latency vs session
length, WebSocket fan-out and server memory, printed side by side with their targets.

    uv run python -m bench.stm_bench [--only fanout] [--baseline DIR] [--profile DIR] [--ws IMPL]

Uses REDIS_URL when set, else starts a throwaway redis-server. The server runs in its own
process (uvicorn, one worker); this process is the load generator. The fan-out section starts
servers of its own, one per configuration (see bench.fanout_sections).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import psutil
import uvloop
from redis.asyncio import Redis

from bench.driver import CpuMeter, Operation, closed_loop
from bench.fanout_sections import FanoutSections
from bench.http_load import (
    HttpConnection,
    encode_json_post,
    encode_request,
    http_op,
    open_connections,
)
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
WARMUP_S = 2.0
DURATION_S = 5.0
LENGTH_WARMUP_S = 1.0
LENGTH_DURATION_S = 3.0
POPULATE_BATCH = 500
CONTENT = "Please remember that the deployment window moves to Thursday at 14:00 UTC."

ADD_MUTATION = (
    "mutation Add($input: AddMessagesInput!) { addMessages(input: $input) "
    "{ sessionId messages { id seq tokenCount createdAt } duplicateIds } }"
)
CONTEXT_QUERY = (
    "query Ctx($id: ID!) { session(id: $id) "
    "{ context { messages { id role content tokenCount } tokenCount truncated } } }"
)


# --- requests -------------------------------------------------------------------------------


def gql_write(session_id: str) -> bytes:
    message = {"role": "USER", "content": CONTENT}
    variables = {"input": {"sessionId": session_id, "messages": [message]}}
    return encode_json_post("/graphql", {"query": ADD_MUTATION, "variables": variables})


def gql_context(session_id: str) -> bytes:
    return encode_json_post("/graphql", {"query": CONTEXT_QUERY, "variables": {"id": session_id}})


def plain_write(session_id: str) -> bytes:
    body = {"messages": [{"role": "user", "content": CONTENT}]}
    return encode_json_post(f"/plain/sessions/{session_id}/messages", body)


def plain_context(session_id: str) -> bytes:
    return encode_request("GET", f"/plain/sessions/{session_id}/context")


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
        self.fanout_only = args.only == "fanout"
        self.args = args
        self.fanout_rss: list[tuple[str, float]] = []
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

    async def direct_case(self, name: str, ops: Sequence[Operation]) -> LoadResult:
        meter = CpuMeter(None, self.redis.pid)
        return await closed_loop(name, ops, warmup_s=WARMUP_S, duration_s=DURATION_S, meter=meter)

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
        """One request of each kind: GraphQL and plain give the same answer."""
        connection = await HttpConnection.open(HOST, self.server.port)
        try:
            status, body = await connection.request(gql_context(self.sid("ctx-100")))
            gql = json.loads(body)
            check(
                status == 200 and "errors" not in gql, f"GraphQL context: {status} {body[:300]!r}"
            )
            status, body = await connection.request(plain_context(self.sid("ctx-100")))
            check(status == 200, f"plain context: {status} {body[:300]!r}")
            plain = json.loads(body)
            gql_ctx = gql["data"]["session"]["context"]
            check(gql_ctx == plain, "GraphQL and plain context differ")
            check(len(plain["messages"]) == 50, "expected a 50-message window")
            status, body = await connection.request(gql_write(self.sid("check")))
            check(status == 200 and b'"errors"' not in body, f"GraphQL write: {body[:300]!r}")
            status, body = await connection.request(plain_write(self.sid("check")))
            check(status == 200, f"plain write: {status} {body[:300]!r}")
            status, body = await connection.request(gql_context(self.sid("ctx-10k")))
            check(status == 200 and b'"errors"' not in body, "GraphQL 10k context")
        finally:
            connection.close()

    async def section_api(self) -> tuple[LoadResult, ...]:
        assert self.stm is not None
        stm = self.stm
        print(
            f"== 1. Three ways to do the same work ({CLIENTS} concurrent clients, 1 server "
            f"worker; {WARMUP_S:g} s warm-up + {DURATION_S:g} s measured per case)"
        )
        health = await self.http_case(
            "HTTP GET /health (ceiling)",
            [encode_request("GET", "/health")] * CLIENTS,
            graphql=False,
            warmup=WARMUP_S,
            duration=DURATION_S,
        )
        gw = await self.http_case(
            "write: GraphQL addMessages",
            [gql_write(self.sid(f"gw-{i}")) for i in range(CLIENTS)],
            graphql=True,
            warmup=WARMUP_S,
            duration=DURATION_S,
        )
        pw = await self.http_case(
            "write: plain POST JSON",
            [plain_write(self.sid(f"pw-{i}")) for i in range(CLIENTS)],
            graphql=False,
            warmup=WARMUP_S,
            duration=DURATION_S,
        )

        def direct_write(session_id: str) -> Operation:
            message = [NewMessage(role=Role.USER, content=CONTENT)]

            async def op() -> bool:
                await stm.add_messages(LOCAL_TENANT, session_id, message)
                return True

            return op

        dw = await self.direct_case(
            "write: in-process service", [direct_write(self.sid(f"dw-{i}")) for i in range(CLIENTS)]
        )
        ctx = self.sid("ctx-100")
        gc = await self.http_case(
            "context(100 msgs): GraphQL",
            [gql_context(ctx)] * CLIENTS,
            graphql=True,
            warmup=WARMUP_S,
            duration=DURATION_S,
        )
        pc = await self.http_case(
            "context(100 msgs): plain GET",
            [plain_context(ctx)] * CLIENTS,
            graphql=False,
            warmup=WARMUP_S,
            duration=DURATION_S,
        )

        async def direct_context() -> bool:
            session = await stm.get_session(LOCAL_TENANT, ctx)
            assert session is not None
            window = await stm.get_context(LOCAL_TENANT, session)
            return len(window.messages) == 50

        dc = await self.direct_case("context(100 msgs): in-process", [direct_context] * CLIENTS)
        results = (health, gw, pw, dw, gc, pc, dc)
        print(table(RESULT_HEADERS, result_rows(results)))
        print(
            "  client us/req = load generator's own CPU per request; client CPU = its share of one"
            " core.\n  server/redis us/req = CPU the server process / redis-server spent per"
            " request (in-process rows: the service runs in the client)."
        )
        write_cpu = gw.server_us / pw.server_us
        write_rps = pw.rps / gw.rps
        read_cpu = gc.server_us / pc.server_us
        read_rps = pc.rps / gc.rps
        print()
        print(
            f"  GraphQL/plain cost per request, write:   {write_cpu:.2f}x server CPU, "
            f"{write_rps:.2f}x by throughput (target <= 1.5x)"
        )
        print(
            f"  GraphQL/plain cost per request, context: {read_cpu:.2f}x server CPU, "
            f"{read_rps:.2f}x by throughput (target <= 1.5x)"
        )
        print(
            f"  HTTP overhead vs in-process (write): GraphQL {dw.rps / gw.rps:.1f}x, "
            f"plain {dw.rps / pw.rps:.1f}x slower by throughput"
        )
        verdict = "MET" if gw.rps >= 2000 and gw.p99_ms < 20 else "NOT MET"
        print(
            f"  >= 2,000 writes/s with p99 < 20 ms (GraphQL, 1 worker): "
            f"{gw.rps:,.0f}/s, p99 {gw.p99_ms:.1f} ms -> {verdict}"
        )
        print()
        self.targets += [
            Target(
                "GraphQL/plain cost, write (server CPU/req) <= 1.5x",
                f"{write_cpu:.2f}x",
                write_cpu <= 1.5,
            ),
            Target(
                "GraphQL/plain cost, context (server CPU/req) <= 1.5x",
                f"{read_cpu:.2f}x",
                read_cpu <= 1.5,
            ),
            Target("GraphQL writes >= 2,000/s on 1 worker", f"{gw.rps:,.0f}/s", gw.rps >= 2000),
            Target("GraphQL write p99 < 20 ms (32 clients)", f"{gw.p99_ms:.1f} ms", gw.p99_ms < 20),
        ]
        return results

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
            if not self.fanout_only:
                began = time.perf_counter()
                await self.populate(self.sid("ctx-100"), 100)
                await self.populate(self.sid("ctx-10k"), 10_000)
                took = time.perf_counter() - began
                print(
                    f"  (populated 100- and 10,000-message sessions in {took:.1f} s, in-process, "
                    f"batches of {POPULATE_BATCH})"
                )
                print()
            if not self.fanout_only:
                await self.validate()
                await self.section_api()
                await self.section_length()
                self.note_rss("after HTTP load (sections 1-2)")
            await self.section_fanout()
        finally:
            await self.stm.close()
            await events.close()
            await llm.close()
            await redis.aclose()

    def print_memory(self) -> None:
        print("== 4. Server process memory (RSS)")
        for label, mb in self.rss:
            print(f"  {label:<60} {mb:7.1f} MB")
        print("  fan-out servers (section 3, one worker each):")
        for label, mb in self.fanout_rss:
            print(f"  {label:<60} {mb:7.1f} MB")
        print()
        idle = self.rss[0][1]
        self.targets.append(
            Target("server RSS idle after start-up < 200 MB", f"{idle:.1f} MB", idle < 200)
        )

    def print_summary(self) -> None:
        print("== Summary")
        rows = [[t.name, t.measured, "MET" if t.met else "NOT MET"] for t in self.targets]
        print(table(["target", "measured", "verdict"], rows))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stm_bench", description=__doc__)
    parser.add_argument(
        "--only", choices=["fanout"], help="run only section 3 (fan-out) and the memory lines"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also run the fan-out with the server code in this directory (e.g. from "
        "`git archive <rev> | tar -x -C DIR`), for before/after figures from one run",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record py-spy flame graphs of the one-worker fan-out servers into this directory "
        "(sampling slows them: take figures from a run without it)",
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
        server = BenchServer(url)
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
