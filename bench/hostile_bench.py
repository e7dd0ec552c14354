"""No request can stall the server: a well-behaved client's latency and the server's memory
while hostile requests arrive, phase by phase in one run against one server.

    uv run python -m bench.hostile_bench [--quick] [--profile DIR] [--code DIR]

One server process (uvicorn, one worker, API_KEYS set, embedded long-term memory, tracing off)
on a throwaway Redis. In every phase a well-behaved client (its own API key) sends GET /health
every 50 ms and a small addMessages and a context read every 100 ms each, at those times
whatever happens (open loop: latency counts from when a request was due), while a few hostile
senders send the phase's requests back to back, each on its own connection (phases run in this
order, except that 4 follows 0 so its memory bound is measured on a heap no other phase grew):

  0  quiet baseline
  1  no API key: bodies at the size limit (tiny messages, one string literal), a body that
     claims 10 MiB in its Content-Length, 10 MiB streamed without a length
  2  a valid API key: one string literal at the limit, tiny messages at the limit, the largest
     legal write (as many longest messages as fit)
  3  the bad-input corpus of tests/e2e/test_bad_input_corpus.py, in a loop
  4  distinct large documents, a: without a key, b: with one (the parser caches' bound)
  5  each request of phases 1 and 2 alone, then one document at the limit that also names a
     subscription (without a key): what each one costs, the stall it causes on its own

Prints each phase's latency of the well-behaved client, the server's RSS (before, after, peak)
and CPU, what it logged, and how the hostile requests were answered; then each target, met or
not. Reports, never asserts. `--only 0,5` runs some phases (a prefix picks 5a, 5b...).
`--profile DIR` samples the server with py-spy during each phase (install it in the
environment: `uv pip install py-spy`) and prints where its event loop spent the phase.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import platform
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import uvloop

from bench import hostile_requests as hostile
from bench.hostile_profile import PhaseProfiler
from bench.http_load import encode_json_post, encode_request
from bench.processes import HOST, BenchRedis, BenchServer
from bench.raw_sender import Reply, send
from bench.stats import Target, fmt, percentile, table
from bench.steady_client import SteadyClient, Stream, StreamFigures
from bench.stm_bench import cpu_model, raise_open_files_limit
from maas.settings import Settings
from tests.support.graphql_client import API_KEYS, KEY_A, KEY_B

SENDERS = 3  # hostile requests in flight at once
TARGET_P99_MS = 100.0
TARGET_RSS_GROWTH_MB = 50.0
HEALTH_INTERVAL_S = 0.05
OP_INTERVAL_S = 0.1
SETTLE_S = 1.0  # after a phase, before its closing RSS: what was in flight finishes
RSS_SAMPLE_S = 0.1
CLAIMED_BYTES = 10 * 2**20

CONTENT = "Please remember that the deployment window moves to Thursday at 14:00 UTC."
CONTEXT = (
    "query Ctx($id: ID!) { session(id: $id) "
    "{ context { messages { id role content tokenCount } tokenCount truncated } } }"
)


@dataclass(frozen=True)
class Sizes:
    """How long phases last and how much they send: a full run or a quick one."""

    phase_s: float
    documents: int  # distinct documents per half of phase 4
    document_bytes: int


FULL = Sizes(phase_s=15.0, documents=100, document_bytes=3 * 2**19)
QUICK = Sizes(phase_s=3.0, documents=8, document_bytes=3 * 2**19)


@dataclass(frozen=True)
class Phase:
    """Hostile requests sent by `senders` at once until `duration_s` is over (a cycle) or
    they run out (duration_s None); no requests: the client alone for duration_s."""

    key: str
    title: str
    requests: Callable[[], Iterator[hostile.Hostile]] | None
    duration_s: float | None
    senders: int = SENDERS


@dataclass
class PhaseResult:
    phase: Phase
    seconds: float
    streams: dict[str, StreamFigures]
    rss_before: float
    rss_after: float
    rss_peak: float
    server_cpu_s: float
    replies: list[tuple[str, Reply]] = field(default_factory=list)
    hotspots: list[str] = field(default_factory=list)
    logged: collections.Counter[str] = field(default_factory=collections.Counter)


def setting_limits() -> tuple[int, int]:
    """The server's body limit and longest message, as it will read them (environment,
    else defaults)."""
    fields = Settings.model_fields
    limit = int(os.environ.get("MAX_REQUEST_BYTES", fields["max_request_bytes"].default))
    chars = int(os.environ.get("MAX_CONTENT_CHARS", fields["max_content_chars"].default))
    return limit, chars


def phases(sizes: Sizes, limit: int, content_chars: int, run: str) -> list[Phase]:
    tiny = hostile.tiny_messages(limit, f"tiny-{run}")
    literal = hostile.string_literal(limit, f"literal-{run}")
    write, count = hostile.largest_write(limit, content_chars, f"largest-{run}")
    mib = limit / 2**20
    tiny_count = tiny.count(b'"role"')
    tiny_name = f"{tiny_count:,} tiny messages ({mib:g} MiB)"
    literal_name = f"string literal of {len(literal) / 2**20:.1f} MiB"
    no_key = [
        hostile.post(f"no key, {tiny_name}", tiny, key=None),
        hostile.post(f"no key, {literal_name}", literal, key=None),
        hostile.declared_oversize(CLAIMED_BYTES),
        hostile.chunked_oversize(CLAIMED_BYTES),
    ]
    keyed = [
        hostile.post(f"key, {literal_name}", literal, key=KEY_A),
        hostile.post(f"key, {tiny_name}", tiny, key=KEY_A),
        hostile.post(
            f"key, largest legal write: {count} x {content_chars:,} chars", write, key=KEY_A
        ),
    ]
    corpus = hostile.corpus(KEY_A)
    subscription = hostile.post(
        f"no key, {mib:g} MiB document naming a subscription",
        hostile.subscription_document(limit),
        key=None,
    )
    alone = [*no_key, *keyed, subscription]
    n, size = sizes.documents, sizes.document_bytes
    # Phase 4 comes right after the baseline: its memory bound is measured on a heap that
    # no other phase has grown yet.
    return [
        Phase("0", "quiet baseline", None, sizes.phase_s),
        Phase("4a", f"{n} distinct {size / 2**20:.1f} MiB documents, no key",
              lambda: hostile.distinct_documents(n, size, None, 0), None),
        Phase("4b", f"{n} distinct {size / 2**20:.1f} MiB documents, key",
              lambda: hostile.distinct_documents(n, size, KEY_A, n), None),
        Phase("1", "no key, bodies at and past the limit", lambda: itertools.cycle(no_key),
              sizes.phase_s),
        Phase("2", "key, requests at the limit", lambda: itertools.cycle(keyed), sizes.phase_s),
        Phase("3", f"bad-input corpus ({len(corpus)} cases) in a loop",
              lambda: itertools.cycle(corpus), sizes.phase_s),
        *(
            Phase(f"5{letter}", f"alone: {request.name}", lambda r=request: iter([r]), None, 1)
            for letter, request in zip("abcdefghij", alone, strict=False)
        ),
    ]  # fmt: skip


def graphql_ok(status: int, body: bytes) -> bool:
    return status == 200 and b'"errors"' not in body


def client_streams(session_id: str) -> list[Stream]:
    auth = {"Authorization": f"Bearer {KEY_B}"}
    message = {"role": "USER", "content": CONTENT}
    write = {"input": {"sessionId": session_id, "messages": [message]}}
    return [
        Stream(
            "/health",
            encode_request("GET", "/health"),
            HEALTH_INTERVAL_S,
            lambda status, _: status == 200,
        ),
        Stream(
            "addMessages",
            encode_json_post("/graphql", {"query": hostile.ADD_MESSAGES, "variables": write}, auth),
            OP_INTERVAL_S,
            graphql_ok,
        ),
        Stream(
            "context",
            encode_json_post("/graphql", {"query": CONTEXT, "variables": {"id": session_id}}, auth),
            OP_INTERVAL_S,
            graphql_ok,
        ),
    ]


class RssSampler:
    """The server's RSS every RSS_SAMPLE_S while running; `peak` is the largest seen."""

    def __init__(self, server: BenchServer) -> None:
        self.server = server
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.peak = self.server.rss_mb()
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.server.rss_mb())
            await asyncio.sleep(RSS_SAMPLE_S)

    async def stop(self) -> float:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.peak = max(self.peak, self.server.rss_mb())
        return self.peak


class ServerLog:
    """What the server wrote to its log since the last look: errors, by exception."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = 0

    def news(self) -> collections.Counter[str]:
        with self.path.open("rb") as log:
            log.seek(self.seen)
            data = log.read()
        self.seen += len(data)
        text = data.decode("utf-8", "replace")
        found: collections.Counter[str] = collections.Counter()
        for line in text.splitlines():
            if _EXCEPTION_LINE.match(line):
                found[line.strip()[:120]] += 1
            elif line.startswith("internal error"):
                found["internal error (500) logged"] += 1
        return found


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Disconnect)\b")


class HostileBench:
    def __init__(
        self,
        server: BenchServer,
        patience_s: float,
        profiler: PhaseProfiler | None,
        log: ServerLog,
    ) -> None:
        self.server = server
        self.log = log
        self.patience_s = patience_s
        self.profiler = profiler
        self.run = uuid.uuid4().hex[:6]
        self.process = psutil.Process(server.pid)

    def cpu_s(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    async def auth_before_body(self, limit: int) -> Reply:
        """Whether an unauthenticated request is answered before its body arrives."""
        probe = hostile.auth_probe(limit)
        return await send(HOST, self.server.port, probe.head, probe.body(), timeout_s=10.0)

    async def run_phase(self, phase: Phase) -> PhaseResult:
        self.log.news()
        rss_before, cpu_before = self.server.rss_mb(), self.cpu_s()
        sampler = RssSampler(self.server)
        sampler.start()
        client = SteadyClient(HOST, self.server.port, client_streams(f"steady-{self.run}"))
        replies: list[tuple[str, Reply]] = []
        if self.profiler is not None:
            self.profiler.start(phase.key)
        began = time.perf_counter()
        client.start()
        if phase.requests is None:
            await asyncio.sleep(phase.duration_s or 0.0)
        else:
            requests = phase.requests()
            deadline = began + phase.duration_s if phase.duration_s is not None else None

            async def sender() -> None:
                while deadline is None or time.perf_counter() < deadline:
                    request = next(requests, None)
                    if request is None:
                        return
                    reply = await send(
                        HOST,
                        self.server.port,
                        request.head,
                        request.body(),
                        timeout_s=self.patience_s,
                    )
                    replies.append((request.name, reply))

            await asyncio.gather(*(sender() for _ in range(phase.senders)))
        streams = await client.stop(self.patience_s)
        seconds = time.perf_counter() - began
        hotspots = self.profiler.stop() if self.profiler is not None else []
        await asyncio.sleep(SETTLE_S)
        peak = await sampler.stop()
        return PhaseResult(
            phase=phase,
            seconds=seconds,
            streams=streams,
            rss_before=rss_before,
            rss_after=self.server.rss_mb(),
            rss_peak=peak,
            server_cpu_s=self.cpu_s() - cpu_before,
            replies=replies,
            hotspots=hotspots,
            logged=self.log.news(),
        )

    async def warm_up(self) -> None:
        """A few ordinary requests, so the first phase does not measure first-use costs."""
        client = SteadyClient(HOST, self.server.port, client_streams(f"steady-{self.run}"))
        client.start()
        await asyncio.sleep(1.0)
        await client.stop(self.patience_s)


# --- printing -------------------------------------------------------------------------------


def latency_cells(figures: StreamFigures) -> list[str]:
    values = figures.latencies_s
    return [
        fmt(percentile(values, 50) * 1000, 1),
        fmt(percentile(values, 99) * 1000, 1),
        fmt(max(values, default=float("nan")) * 1000, 0),
    ]


def print_latency(results: list[PhaseResult]) -> None:
    names = list(results[0].streams)
    headers = ["phase", "s"]
    for name in names:
        headers += [f"{name} p50", "p99", "max"]
    headers += ["n", "failed"]
    rows = []
    for r in results:
        row = [f"{r.phase.key} {r.phase.title}", fmt(r.seconds, 0)]
        for name in names:
            row += latency_cells(r.streams[name])
        count = sum(len(f.latencies_s) for f in r.streams.values())
        failed = sum(f.errors + f.unanswered for f in r.streams.values())
        rows.append([*row, str(count), str(failed)])
    print("== Well-behaved client (ms, from when each request was due)")
    print(table(headers, rows))
    print()


def print_memory(results: list[PhaseResult]) -> None:
    rows = [
        [
            f"{r.phase.key} {r.phase.title}",
            fmt(r.rss_before, 0),
            fmt(r.rss_after, 0),
            fmt(r.rss_peak, 0),
            f"{r.rss_after - r.rss_before:+,.0f}",
            fmt(r.server_cpu_s, 1),
            str(len(r.replies)),
            fmt(len(r.replies) / r.seconds, 1),
            str(sum(r.logged.values())),
        ]
        for r in results
    ]
    headers = [
        "phase", "RSS before", "after", "peak", "growth", "server CPU s", "hostile sent", "per s",
        "errors logged",
    ]  # fmt: skip
    print("== Server memory (MB) and CPU")
    print(table(headers, rows))
    print()


def print_answers(results: list[PhaseResult]) -> None:
    print("== How the hostile requests were answered (reply time from the first byte sent)")
    for r in results:
        if not r.replies and not r.logged:
            continue
        print(f"  phase {r.phase.key}: {r.phase.title}")
        by_name: dict[str, list[Reply]] = collections.defaultdict(list)
        for name, reply in r.replies:
            by_name[name].append(reply)
        if len(by_name) > 8:  # the corpus: outcomes over all, then the slowest cases
            print_outcomes("every case", [reply for _, reply in r.replies])
            slowest = sorted(r.replies, key=lambda item: -item[1].seconds)[:5]
            for name, reply in slowest:
                print(f"      slowest: {name!r}: {reply.outcome}, {reply.seconds:.2f} s")
        else:
            for name, replies in by_name.items():
                print_outcomes(name, replies)
        for line, count in r.logged.most_common():
            print(f"    server log: {line} x{count}")
    print()


def print_outcomes(name: str, replies: list[Reply]) -> None:
    outcomes = collections.Counter(reply.outcome for reply in replies)
    answered = ", ".join(f"{outcome} x{count}" for outcome, count in outcomes.most_common())
    seconds = [reply.seconds for reply in replies]
    print(
        f"    {name}: {answered}; reply p50 {percentile(seconds, 50):.2f} s, "
        f"max {max(seconds):.2f} s"
    )


def print_hotspots(results: list[PhaseResult]) -> None:
    if not any(r.hotspots for r in results):
        return
    print("== Where the server's event loop spent each phase (py-spy, main thread)")
    for r in results:
        print(f"  phase {r.phase.key}: {r.phase.title}")
        for line in r.hotspots:
            print(f"    {line}")
    print()


def targets(results: list[PhaseResult]) -> list[Target]:
    found = []
    for r in results:
        p99s = [percentile(f.latencies_s, 99) * 1000 for f in r.streams.values()]
        found.append(
            Target(
                f"phase {r.phase.key}: p99 < {TARGET_P99_MS:g} ms ({' / '.join(r.streams)})",
                " / ".join(fmt(p99, 0) for p99 in p99s) + " ms",
                all(p99 < TARGET_P99_MS for p99 in p99s),
            )
        )
    documents = [r for r in results if r.phase.key.startswith("4")]
    if documents:
        growth = documents[-1].rss_after - documents[0].rss_before
        peak = max(r.rss_peak for r in documents) - documents[0].rss_before
        found.append(
            Target(
                f"phase 4: RSS growth < +{TARGET_RSS_GROWTH_MB:g} MB (peak in brackets)",
                f"{growth:+.0f} MB ({peak:+.0f} MB)",
                growth < TARGET_RSS_GROWTH_MB,
            )
        )
    return found


def print_machine(limit: int, server: BenchServer) -> None:
    from importlib.metadata import version

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print("== Machine")
    print(
        f"  {os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()}, "
        f"strawberry-graphql {version('strawberry-graphql')}, graphql-core "
        f"{version('graphql-core')}, uvicorn {version('uvicorn')}"
    )
    print(f"  load average before the run: {load} (other processes share these cores)")
    print(
        f"  server pid {server.pid} on port {server.port}, code from {server.code}, "
        f"MAX_REQUEST_BYTES {limit:,}"
    )


def print_targets(found: list[Target]) -> None:
    print("== Targets")
    rows = [[t.name, t.measured, "MET" if t.met else "NOT MET"] for t in found]
    print(table(["target", "measured", "verdict"], rows))


async def bench(server: BenchServer, log: ServerLog, args: argparse.Namespace) -> list[PhaseResult]:
    limit, content_chars = setting_limits()
    profiler = PhaseProfiler(server.pid, args.profile) if args.profile else None
    runner = HostileBench(server, args.patience, profiler, log)
    probe = await runner.auth_before_body(limit)
    verdict = "yes" if probe.status is not None else "no (it waits for the body)"
    print(f"  answers an unauthenticated POST before its body arrives: {verdict} ({probe.outcome})")
    await asyncio.sleep(SETTLE_S)  # the server notices the probe hang up
    print(f"  what the server logged meanwhile: {dict(log.news()) or 'nothing'}")
    await runner.warm_up()
    print()
    results = []
    chosen = phases(QUICK if args.quick else FULL, limit, content_chars, runner.run)
    if args.only:
        keys = args.only.split(",")
        chosen = [p for p in chosen if any(p.key.startswith(key) for key in keys)]
    for phase in chosen:
        print(f"  phase {phase.key}: {phase.title} ...", flush=True)
        results.append(await runner.run_phase(phase))
    print()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 s phases, 8+8 documents")
    parser.add_argument("--only", help="comma-separated phases to run, e.g. 0,2,5 (5: 5a, 5b...)")
    parser.add_argument(
        "--profile", type=Path, help="record py-spy samples of each phase into this directory"
    )
    parser.add_argument(
        "--code", type=Path, help="serve the code of another checkout (e.g. a branch's worktree)"
    )
    parser.add_argument(
        "--patience",
        type=float,
        default=300.0,
        help="longest wait for any one reply, seconds (default 300)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    raise_open_files_limit()
    limit, _ = setting_limits()
    redis = BenchRedis()
    server: BenchServer | None = None
    with tempfile.TemporaryDirectory(prefix="maas-hostile-") as data_dir:
        try:
            env = {
                "API_KEYS": json.dumps(API_KEYS),
                "DATA_DIR": data_dir,
                "MAX_REQUEST_BYTES": str(limit),
                "OTEL_SDK_DISABLED": "true",
                "LOG_LEVEL": "WARNING",
            }
            log = ServerLog(Path(data_dir) / "server.log")
            server = BenchServer(
                redis.start(), "maas.app:create_app", env=env, code=args.code, log=log.path
            )
            server.start()
            print_machine(limit, server)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results = runner.run(bench(server, log, args))
            print_latency(results)
            print_memory(results)
            print_answers(results)
            print_hotspots(results)
            print_targets(targets(results))
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
