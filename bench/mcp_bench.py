"""MCP vs GraphQL: the same two operations (write one message, read a session's context) over
/mcp (a stateless `tools/call`, JSON response) and over /graphql, on one server, side by side.

    uv run python -m bench.mcp_bench [--rounds N] [--seconds S] [--concurrency C]

Starts a throwaway redis-server and the bench app (embedded defaults, no LLM, no API keys) in its
own process; the rounds alternate between the transports so a noisy machine weighs on both
alike. Prints per case: requests/s, p50/p99 latency and the server's CPU per request, and the
ratio of MCP's to GraphQL's server CPU per request. There is no target: the figures say what
the SDK's protocol handling costs beside Strawberry's.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from bench.api_sections import (
    ADD_MUTATION,
    CONTENT,
    CONTEXT_QUERY,
    COST_HEADERS,
    cost_row,
    counted,
    pooled,
)
from bench.driver import CpuMeter, closed_loop
from bench.http_load import encode_json_post, open_connections
from bench.processes import HOST, BenchRedis, BenchServer
from bench.stats import LoadResult, fmt, table

SESSION = "bench-context"
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def mcp_call(tool: str, arguments: dict[str, object]) -> bytes:
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    return encode_json_post("/mcp", message, MCP_HEADERS)


def requests(session_id: str) -> dict[str, tuple[bytes, bool]]:
    """Each case's request, and whether it is GraphQL (a body with "errors" failed)."""
    message = {"role": "USER", "content": CONTENT}
    gql_write = {"input": {"sessionId": session_id, "messages": [message]}}
    return {
        "graphql addMessages": (
            encode_json_post("/graphql", {"query": ADD_MUTATION, "variables": gql_write}),
            True,
        ),
        "mcp add_messages": (
            mcp_call("add_messages", {"sessionId": session_id, "messages": [message]}),
            False,
        ),
        "graphql context": (
            encode_json_post("/graphql", {"query": CONTEXT_QUERY, "variables": {"id": SESSION}}),
            True,
        ),
        "mcp get_context": (mcp_call("get_context", {"sessionId": SESSION}), False),
    }


async def run(rounds: int, seconds: float, concurrency: int) -> None:
    redis = BenchRedis()
    server = BenchServer(redis.start())
    server.start()
    try:
        connections = await open_connections(HOST, server.port, concurrency)
        # A context of 20 messages to read.
        fill = requests(SESSION)["graphql addMessages"][0]
        for _ in range(20):
            status, body = await connections[0].request(fill)
            if status != 200 or b'"errors"' in body:
                raise RuntimeError(f"could not fill the session: {body[:300]!r}")
        for name, (raw, _) in requests("bench-check").items():
            status, body = await connections[0].request(raw)
            if status != 200 or b'"errors"' in body or b'"isError":true' in body:
                raise RuntimeError(f"{name} fails: {status} {body[:300]!r}")
        meter = CpuMeter(server.pid, redis.pid)
        results: dict[str, list[LoadResult]] = {}
        for round_ in range(rounds):
            for name, (raw, graphql) in requests(f"bench-write-{round_}").items():
                tally = [0]
                ops = [counted(c, raw, graphql=graphql, tally=tally) for c in connections]
                result = await closed_loop(
                    name, ops, warmup_s=min(1.0, seconds / 4), duration_s=seconds, meter=meter
                )
                results.setdefault(name, []).append(result)
        for connection in connections:
            connection.close()
    finally:
        server.stop()
        redis.stop()
    report({name: pooled(name, rs) for name, rs in results.items()}, concurrency)


def report(results: dict[str, LoadResult], concurrency: int) -> None:
    print(f"== MCP vs GraphQL, {concurrency} connections, one request in flight on each")
    print(table(COST_HEADERS, [cost_row(r) for r in results.values()]))
    print()
    for graphql, mcp in [
        ("graphql addMessages", "mcp add_messages"),
        ("graphql context", "mcp get_context"),
    ]:
        ratio = results[mcp].server_us / results[graphql].server_us
        p50 = results[mcp].p50_ms / results[graphql].p50_ms
        print(f"{mcp} / {graphql}: server CPU per request x{fmt(ratio, 2)}, p50 x{fmt(p50, 2)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case (3)")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds a round (4)")
    parser.add_argument("--concurrency", type=int, default=4, help="connections (4)")
    args = parser.parse_args(argv)
    asyncio.run(run(args.rounds, args.seconds, args.concurrency))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
