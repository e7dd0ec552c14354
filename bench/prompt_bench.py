"""Memory-prompt benchmark: `memoryPrompt` beside a plain `searchMemories`, over real GraphQL
HTTP on the embedded defaults (embedded vector store, local MiniLM embeddings), printed side by
side with their ratio (target: memoryPrompt's p50 within 1.3x of searchMemories').

    uv run python -m bench.prompt_bench [--memories 1000] [--rounds 300]

One server process (uvicorn, one worker, tracing off) on a throwaway redis-server (REDIS_URL
when set) and a temporary data directory; one client, one request at a time. Each round sends,
in an order shuffled per round so drift and noise fall on all alike: a searchMemories, a
memoryPrompt with the same query, and a memoryPrompt without one (the session's newest user
message is then the query: the session is read before the search, not beside it). Server CPU
per operation is the server process's CPU time across each request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from bench.http_load import HttpConnection, encode_json_post
from bench.ltm_corpus import memory_sentences, questions
from bench.processes import HOST, BenchRedis, BenchServer
from bench.stats import fmt, percentile, table
from bench.stm_bench import cpu_model

USER = "bench-user"
OTHER_USERS = 20  # memories of other users share the store, as in a real tenant
SESSION = "bench-session"
SESSION_TURNS = 20
LIMIT = 5
BATCH = 50  # addMemories' most items per call (LTM_MAX_BATCH_SIZE's default)
WARMUP_ROUNDS = 30
TARGET_RATIO = 1.3

SEARCH = """
query S($input: SearchMemoriesInput!) {
  searchMemories(input: $input) { score memory { id text category } }
}"""
PROMPT = """
query P($input: MemoryPromptInput!) {
  memoryPrompt(input: $input) {
    messages { role content } tokenCount overBudget omittedMemoryIds omittedMessageCount
    memories { score memory { id category } }
  }
}"""
ADD_MEMORIES = """
mutation A($items: [AddMemoryInput!]!) { addMemories(input: {items: $items}) { results { ok } } }
"""
ADD_MESSAGES = """
mutation M($sessionId: String!, $messages: [MessageInput!]!) {
  addMessages(input: {sessionId: $sessionId, messages: $messages}) { sessionId }
}"""


@dataclass
class Operation:
    name: str
    request: Callable[[str], bytes]  # the encoded request for a query
    latencies_s: list[float] = field(default_factory=list)
    server_cpu_s: float = 0.0

    def p(self, pct: float) -> float:
        return percentile(self.latencies_s, pct) * 1000


def graphql(query: str, variables: dict[str, object]) -> bytes:
    return encode_json_post("/graphql", {"query": query, "variables": variables})


async def call(connection: HttpConnection, raw: bytes) -> dict[str, object]:
    status, body = await connection.request(raw)
    reply = json.loads(body)
    if status != 200 or "errors" in reply:
        raise RuntimeError(f"request failed ({status}): {body[:500]!r}")
    return reply


async def seed(connection: HttpConnection, memories: int) -> None:
    texts = memory_sentences(memories * 2)
    users = [USER if i % 2 == 0 else f"other-{i % OTHER_USERS}" for i in range(len(texts))]
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        items = [
            {"text": text, "userId": user, "infer": False}
            for text, user in zip(
                texts[start : start + BATCH], users[start : start + BATCH], strict=True
            )
        ]
        await call(connection, graphql(ADD_MEMORIES, {"items": items}))
    asked = questions(SESSION_TURNS)
    messages = [
        {"role": "USER" if i % 2 == 0 else "ASSISTANT", "content": text}
        for i, text in enumerate(asked)
    ]
    messages[-1] = {"role": "USER", "content": asked[-1]}
    await call(connection, graphql(ADD_MESSAGES, {"sessionId": SESSION, "messages": messages}))
    print(
        f"  seeded {len(texts):,} memories ({memories:,} of the searched user) and a session of "
        f"{SESSION_TURNS} messages in {time.perf_counter() - started:.1f} s"
    )


def operations() -> list[Operation]:
    scope = {"userId": USER}
    return [
        Operation(
            "searchMemories",
            lambda q: graphql(SEARCH, {"input": {"query": q, "limit": LIMIT, **scope}}),
        ),
        Operation(
            "memoryPrompt (query)",
            lambda q: graphql(
                PROMPT,
                {"input": {"sessionId": SESSION, "query": q, "memoryLimit": LIMIT, **scope}},
            ),
        ),
        Operation(
            "memoryPrompt (default query)",
            lambda _: graphql(
                PROMPT, {"input": {"sessionId": SESSION, "memoryLimit": LIMIT, **scope}}
            ),
        ),
    ]


async def measure(port: int, server: psutil.Process, memories: int, rounds: int) -> None:
    connection = await HttpConnection.open(HOST, port)
    try:
        await seed(connection, memories)
        ops = operations()
        asked = questions(200, seed=7)
        rng = random.Random(3)
        for index in range(WARMUP_ROUNDS + rounds):
            query = asked[index % len(asked)]
            for op in rng.sample(ops, len(ops)):
                raw = op.request(query)
                cpu = server.cpu_times()
                started = time.perf_counter()
                await call(connection, raw)
                elapsed = time.perf_counter() - started
                after = server.cpu_times()
                if index >= WARMUP_ROUNDS:
                    op.latencies_s.append(elapsed)
                    op.server_cpu_s += (after.user + after.system) - (cpu.user + cpu.system)
    finally:
        connection.close()
    report(ops, memories, rounds)


def report(ops: list[Operation], memories: int, rounds: int) -> None:
    search = ops[0]
    print(
        f"\n== memoryPrompt vs searchMemories: {rounds} rounds, 1 client, GraphQL over HTTP, "
        f"{memories:,} memories of the user, limit {LIMIT}, session of {SESSION_TURNS} messages"
    )
    rows = [
        [
            op.name,
            fmt(op.p(50), 2),
            fmt(op.p(99), 2),
            fmt(op.server_cpu_s / len(op.latencies_s) * 1000, 2),
            fmt(op.p(50) / search.p(50), 2),
            fmt(op.p(99) / search.p(99), 2),
        ]
        for op in ops
    ]
    print(
        table(["operation", "p50 ms", "p99 ms", "server CPU ms/op", "p50 ratio", "p99 ratio"], rows)
    )
    print("\n== Summary")
    marks = {True: "yes", False: "NO"}
    summary = []
    for op in ops[1:]:
        ratio = op.p(50) / search.p(50)
        summary.append([op.name, fmt(ratio, 2), f"<= {TARGET_RATIO}", marks[ratio <= TARGET_RATIO]])
    print(table(["p50 / searchMemories p50", "ratio", "target", "met?"], summary))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=1_000, help="memories of the user")
    parser.add_argument("--rounds", type=int, default=300, help="measured rounds")
    args = parser.parse_args()
    print("== Machine")
    print(f"  cores: {os.cpu_count()} ({cpu_model()}); load average before the run: ", end="")
    print(", ".join(f"{x:.2f}" for x in os.getloadavg()))
    redis = BenchRedis()
    try:
        with tempfile.TemporaryDirectory(prefix="maas-prompt-bench-") as data_dir:
            server = BenchServer(
                redis.start(),
                env={
                    "DATA_DIR": data_dir,
                    "VECTOR_STORE_PROVIDER": "embedded",
                    # Tracing's own cost is the telemetry benchmark's subject.
                    "OTEL_SDK_DISABLED": "true",
                },
            )
            server.start()
            try:
                asyncio.run(
                    measure(server.port, psutil.Process(server.pid), args.memories, args.rounds)
                )
            finally:
                server.stop()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
