"""Writes on a Redis Cluster vs one Redis: the same server (one worker) and the same GraphQL
addMessages load (32 clients, each on its own session, so sessions spread over all masters),
alternated over rounds and printed side by side.

    uv run python -m bench.cluster_bench

Starts a throwaway redis-server and a throwaway 3-master cluster (no replicas, AOF off on
both: this measures the service and the client, not the disk). Tracing is off on both servers.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import uvloop

from bench.api_sections import gql_write
from bench.driver import CpuMeter, closed_loop
from bench.http_load import http_op, open_connections
from bench.processes import HOST, BenchRedis, BenchServer
from bench.stats import LoadResult, fmt, table
from tests.support.redis_cluster import LocalRedisCluster

CLIENTS = 32
ROUNDS = 3
WARMUP_S = 2.0
DURATION_S = 5.0
SERVER_ENV = {"OTEL_SDK_DISABLED": "true"}


def _redis_cpu(pids: list[int]) -> float:
    return sum(t.user + t.system for t in (psutil.Process(p).cpu_times() for p in pids))


async def _round(
    server: BenchServer, redis_pids: list[int], label: str
) -> tuple[LoadResult, float]:
    run = uuid.uuid4().hex[:6]
    requests = [gql_write(f"cluster-bench-{run}-{n}") for n in range(CLIENTS)]
    connections = await open_connections(HOST, server.port, CLIENTS)
    redis_before = _redis_cpu(redis_pids)
    try:
        result = await closed_loop(
            label,
            [http_op(c, raw, graphql=True) for c, raw in zip(connections, requests, strict=True)],
            warmup_s=WARMUP_S,
            duration_s=DURATION_S,
            meter=CpuMeter(server.pid),
        )
    finally:
        for connection in connections:
            connection.close()
    # Redis CPU over warm-up and measurement alike, per request of the whole round.
    redis_s = _redis_cpu(redis_pids) - redis_before
    return result, redis_s


async def measure(servers: dict[str, tuple[BenchServer, list[int]]]) -> None:
    results: dict[str, list[tuple[LoadResult, float]]] = {name: [] for name in servers}
    for index in range(ROUNDS):
        for name, (server, redis_pids) in servers.items():
            results[name].append(await _round(server, redis_pids, name))
        print(f"  round {index + 1}/{ROUNDS} done")
    rows = []
    rates = {}
    for name, rounds in results.items():
        rps = sorted(r.rps for r, _ in rounds)
        best = max(rounds, key=lambda pair: pair[0].rps)
        result, redis_s = best
        served = result.count * (WARMUP_S + DURATION_S) / DURATION_S
        rates[name] = rps[len(rps) // 2]
        rows.append(
            [
                name,
                " / ".join(f"{r:,.0f}" for r in rps),
                fmt(result.p50_ms),
                fmt(result.p99_ms),
                fmt(result.server_us, 0),
                fmt(redis_s / served * 1e6, 0),
                str(sum(r.errors for r, _ in rounds)),
            ]
        )
    print(
        table(
            [
                "Redis",
                "writes/s (each round)",
                "p50 ms",
                "p99 ms",
                "server CPU µs/write",
                "Redis CPU µs/write",
                "errors",
            ],
            rows,
        )
    )
    print(
        f"  cluster / single, median writes/s: {rates['cluster'] / rates['single']:.2f}x "
        "(latency and CPU from each one's best round)"
    )


def main() -> int:
    started = time.perf_counter()
    single = BenchRedis()
    servers: list[BenchServer] = []
    with tempfile.TemporaryDirectory(prefix="maas-cluster-bench-") as tmp:
        cluster = LocalRedisCluster(Path(tmp), appendfsync=None)
        try:
            single_url = single.start()
            cluster.start()
            cluster_pids = [node.pid for node in cluster.nodes if node.pid is not None]
            on_single = BenchServer(single_url, env=SERVER_ENV)
            on_cluster = BenchServer(cluster.url, env={**SERVER_ENV, "REDIS_CLUSTER": "true"})
            servers += [on_single, on_cluster]
            for server in servers:
                server.start()
            print(
                f"== Writes (GraphQL addMessages, {CLIENTS} clients, one session each), "
                f"one Redis vs a 3-master cluster; {ROUNDS} alternated rounds of {DURATION_S:.0f} s"
            )
            assert single.pid is not None
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(
                    measure(
                        {
                            "single": (on_single, [single.pid]),
                            "cluster": (on_cluster, cluster_pids),
                        }
                    )
                )
        finally:
            for server in servers:
                server.stop()
            cluster.stop()
            single.stop()
    print(f"(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
