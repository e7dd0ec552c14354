"""Sessions that teach long-term memory: how many session messages per second reach long-term
memory with a 200 ms LLM, and what extraction running in the background does to addMessages
p99 (target: within 10 % of extraction off), printed side by side.

    uv run python -m bench.extraction_bench [--sessions N] [--turns N] [--duration S]

Uses REDIS_URL when set, else a throwaway redis-server. Each server is `create_app` under
uvicorn in its own process (one worker, tracing off, the embedded vector store and local
MiniLM embeddings in a temporary directory); the LLM is the test suite's FakeLLM in this
process, answering every call after LLM_DELAY_S with one extracted fact. The p99 comparison
alternates the two servers (off, on, off, on, ...) under the same closed-loop load, and the
extracting server has a backlog to work through the whole time (its own load's messages).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import psutil
from redis.asyncio import Redis

from bench.api_sections import ADD_MUTATION, CONTENT
from bench.driver import CpuMeter, closed_loop
from bench.http_load import HttpConnection, encode_json_post, http_op, open_connections
from bench.processes import HOST, BenchRedis, BenchServer
from bench.stats import LoadResult, fmt, table
from stores.redis_keys import extraction_queue
from tests.support.fake_llm import FakeLLM

LLM_DELAY_S = 0.2
MAX_P99_RATIO = 1.10
CLIENTS = 8
ROUNDS = 5  # off/on pairs of the p99 comparison
WARMUP_S = 1.0
QUEUE = extraction_queue("maas")
DRAIN_TIMEOUT_S = 600.0


def server_env(data_dir: Path, llm_url: str, *, extraction: bool) -> dict[str, str]:
    return {
        "OTEL_SDK_DISABLED": "true",
        "LOG_LEVEL": "WARNING",
        "DATA_DIR": str(data_dir),
        "LLM_BASE_URL": llm_url,
        "LLM_API_KEY": "bench",
        "LLM_MAX_RETRIES": "0",
        "STM_LONG_TERM_EXTRACTION": "true" if extraction else "false",
        "STM_EXTRACTION_DELAY_SECONDS": "0.5",
        "OPENBLAS_NUM_THREADS": "1",
    }


def write_request(session_id: str, content: str) -> bytes:
    variables = {
        "input": {"sessionId": session_id, "messages": [{"role": "USER", "content": content}]}
    }
    return encode_json_post("/graphql", {"query": ADD_MUTATION, "variables": variables})


def extraction_reply(n: int) -> str:
    return json.dumps({"memory": [{"text": f"Fact number {n} about the deployment window."}]})


async def drained(redis: Redis) -> None:
    """Wait until no session has messages waiting for extraction."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while await redis.zcard(QUEUE):
        if time.monotonic() > deadline:
            raise RuntimeError("extraction never drained: is the extraction process running?")
        await asyncio.sleep(0.02)


def with_children(server: BenchServer) -> list[int]:
    """The server's pid and its children's (the extraction process)."""
    return [server.pid, *(child.pid for child in psutil.Process(server.pid).children())]


class Bench:
    def __init__(self, redis_url: str, redis_pid: int | None, fake: LLMProcess, tmp: Path) -> None:
        self.redis_url = redis_url
        self.redis_pid = redis_pid
        self.fake = fake
        self.tmp = tmp

    def server(self, name: str, *, extraction: bool) -> BenchServer:
        env = server_env(self.tmp / name, self.fake.base_url, extraction=extraction)
        # `maas serve`, as deployed: with its low-priority extraction process.
        server = BenchServer(self.redis_url, env=env, cli=True)
        server.start()
        return server

    async def warm(self, server: BenchServer) -> None:
        """One extraction through the server, so its embedding model and stores are loaded
        before anything is measured."""
        redis = Redis.from_url(self.redis_url)
        try:
            (connection,) = await open_connections(HOST, server.port, 1)
            await connection.request(write_request(f"warm-{uuid.uuid4().hex}", CONTENT))
            connection.close()
            await drained(redis)
        finally:
            await redis.aclose()

    async def throughput(self, sessions: int, turns: int) -> tuple[float, float]:
        """Write sessions x turns messages, turn by turn, to an extracting server; messages
        per second from the first write until nothing waits, and the server's CPU s."""
        server = self.server("throughput", extraction=True)
        redis = Redis.from_url(self.redis_url)
        try:
            await self.warm(server)
            connections = await open_connections(HOST, server.port, sessions)
            meter = CpuMeter(with_children(server))
            _, cpu0, _ = meter.sample()
            began = time.perf_counter()

            async def converse(n: int, connection: HttpConnection) -> None:
                for turn in range(turns):
                    raw = write_request(f"t{n}", f"{CONTENT} Turn {turn} of session {n}.")
                    status, body = await connection.request(raw)
                    if status != 200 or b'"errors"' in body:
                        raise RuntimeError(f"addMessages failed: {body[:300]!r}")

            await asyncio.gather(*(converse(n, c) for n, c in enumerate(connections)))
            await drained(redis)
            elapsed = time.perf_counter() - began
            _, cpu1, _ = meter.sample()
            for connection in connections:
                connection.close()
            assert cpu0 is not None
            assert cpu1 is not None
            return sessions * turns / elapsed, cpu1 - cpu0
        finally:
            await redis.aclose()
            server.stop()

    async def write_load(self, server: BenchServer, label: str, duration_s: float) -> LoadResult:
        connections = await open_connections(HOST, server.port, CLIENTS)
        run = uuid.uuid4().hex[:8]
        ops = [
            http_op(c, write_request(f"{run}-{n}", CONTENT), graphql=True)
            for n, c in enumerate(connections)
        ]
        meter = CpuMeter(server.pid, self.redis_pid)
        result = await closed_loop(
            label, ops, warmup_s=WARMUP_S, duration_s=duration_s, meter=meter
        )
        for connection in connections:
            connection.close()
        return result

    async def p99_side_by_side(self, duration_s: float) -> list[tuple[LoadResult, LoadResult]]:
        off = self.server("off", extraction=False)
        on = self.server("on", extraction=True)
        try:
            await self.warm(on)
            pairs = []
            for n in range(ROUNDS):
                pairs.append(
                    (
                        await self.write_load(off, f"off #{n + 1}", duration_s),
                        await self.write_load(on, f"on #{n + 1}", duration_s),
                    )
                )
            return pairs
        finally:
            off.stop()
            on.stop()


def load_rows(pairs: Sequence[tuple[LoadResult, LoadResult]]) -> list[list[str]]:
    rows = []
    for off, on in pairs:
        for result in (off, on):
            rows.append(
                [
                    result.name,
                    fmt(result.rps, 0),
                    fmt(result.p50_ms, 2),
                    fmt(result.p99_ms, 2),
                    fmt(result.server_us, 0),
                    str(result.errors),
                ]
            )
    return rows


def serve_llm() -> None:
    """The FakeLLM in a process of its own (so it takes no CPU from the load generator): prints
    its base URL, then serves until its stdin closes."""
    fake = FakeLLM().start()
    fake.set_delay(LLM_DELAY_S)
    fake.script(*(extraction_reply(n) for n in range(100_000)))
    print(fake.base_url, flush=True)
    sys.stdin.read()
    fake.stop()


class LLMProcess:
    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.extraction_bench", "--serve-llm"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().decode().strip()
        self.pid = self._process.pid

    def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait()


async def run(args: argparse.Namespace) -> int:
    redis = BenchRedis()
    with tempfile.TemporaryDirectory(prefix="maas-extraction-bench-") as tmp:
        fake = LLMProcess()
        try:
            url = redis.start()
            bench = Bench(url, redis.pid, fake, Path(tmp))
            print(
                f"LLM: FakeLLM answering every call after {LLM_DELAY_S * 1000:.0f} ms; "
                f"{CLIENTS} closed-loop writers, {args.duration:.0f} s per run"
            )
            per_s, cpu_s = await bench.throughput(args.sessions, args.turns)
            messages = args.sessions * args.turns
            print("\n1. Extraction throughput (messages written turn by turn, then drained)")
            print(
                table(
                    ["messages", "sessions", "msgs/s", "server CPU ms/msg"],
                    [
                        [
                            str(messages),
                            str(args.sessions),
                            fmt(per_s, 1),
                            fmt(cpu_s / messages * 1000, 2),
                        ]
                    ],
                )
            )
            pairs = await bench.p99_side_by_side(args.duration)
        finally:
            fake.stop()
            redis.stop()
    print("\n2. addMessages with extraction off vs on (alternating runs)")
    print(
        table(["run", "req/s", "p50 ms", "p99 ms", "server CPU us/req", "errors"], load_rows(pairs))
    )
    off_p99 = statistics.median(off.p99_ms for off, _ in pairs)
    on_p99 = statistics.median(on.p99_ms for _, on in pairs)
    ratio = on_p99 / off_p99
    met = ratio <= MAX_P99_RATIO
    print(
        f"\nmedian p99: off {off_p99:.2f} ms, on {on_p99:.2f} ms -> {ratio:.2f}x "
        f"(target <= {MAX_P99_RATIO:.2f}x): {'MET' if met else 'NOT MET'}"
    )
    off_p50 = statistics.median(off.p50_ms for off, _ in pairs)
    on_p50 = statistics.median(on.p50_ms for _, on in pairs)
    print(f"median p50: off {off_p50:.2f} ms, on {on_p50:.2f} ms -> {on_p50 / off_p50:.2f}x")
    print(f"extraction throughput: {per_s:.1f} messages/s with a {LLM_DELAY_S * 1000:.0f} ms LLM")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--serve-llm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_llm:
        serve_llm()
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
