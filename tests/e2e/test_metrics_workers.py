"""/metrics of `maas serve --workers 2`: whichever worker answers a scrape, it reports the
operations of both, and the subscriptions of the workers still running."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Connect, ServerProcess
from tests.support.graphql_client import API_KEYS, KEY_A, post, subscribed
from tests.support.patience import PROCESS_START_S
from tests.support.prometheus_samples import per_process, sample, scrape

OPERATIONS = "maas_graphql_operations_total"
SUBSCRIPTIONS = "maas_active_subscriptions"
SESSION_EVENTS = {"operation": "sessionEvents"}
SCRAPES = 10


@pytest.fixture(scope="module")
def server_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's TMPDIR, where `maas serve` makes its workers' metrics directory."""
    return tmp_path_factory.mktemp("server-tmp")


@pytest.fixture(scope="module")
def server(server_processes: Callable[..., list[ServerProcess]], server_tmp: Path) -> ServerProcess:
    """One `maas serve --workers 2`, shared by this module's tests (a boot costs seconds)."""
    # Tracing off: its shutdown, with no collector to flush to, would cost seconds per worker.
    # Access lines on, and written only when a line at WARNING comes or the process ends: the
    # last test reads them after SIGTERM.
    (server,) = server_processes(
        1,
        API_KEYS,
        workers=2,
        TMPDIR=str(server_tmp),
        OTEL_SDK_DISABLED="true",
        LOG_LEVEL="INFO",
        LOG_FLUSH_SECONDS="600",
    )
    return server


@pytest.fixture(scope="module")
def metrics_dir(server: ServerProcess, server_tmp: Path) -> Path:
    (path,) = server_tmp.glob("maas-metrics-*")
    return path


def live_subscriptions(metrics_dir: Path) -> dict[int, float]:
    """The sessionEvents subscriptions each worker streams now, by pid (workers with some)."""
    gauges = per_process(metrics_dir, "gauge_livesum", SUBSCRIPTIONS, **SESSION_EVENTS)
    return {pid: count for pid, count in gauges.items() if count > 0}


def _deadline() -> float:
    # Both workers must have booted, which takes seconds (minutes on a loaded machine).
    return time.monotonic() + PROCESS_START_S


async def send_until_both_workers_answered(
    server: ServerProcess, metrics_dir: Path, query: str, operation: str
) -> int:
    """Sends `query` over a new connection per request, a few at a time, until both workers
    have counted some (the second may still be booting); returns how many were sent."""
    labels = {"operation": operation, "type": "query"}
    sent = 0
    deadline = _deadline()
    while len(per_process(metrics_dir, "counter", OPERATIONS, **labels)) < 2:
        assert time.monotonic() < deadline, "the requests never reached the second worker"
        batch = await asyncio.gather(*(post(server.url, query, key=KEY_A) for _ in range(8)))
        assert [(r.status_code, "errors" in r.json()) for r in batch] == [(200, False)] * 8
        sent += len(batch)
    return sent


async def test_every_scrape_reports_the_operations_of_all_workers(
    server: ServerProcess, metrics_dir: Path, redis: object
) -> None:
    sent = await send_until_both_workers_answered(
        server, metrics_dir, "{ sessions(first: 1) { nodes { id } } }", "sessions"
    )
    query = {"operation": "sessions", "type": "query"}
    by_worker = per_process(metrics_dir, "counter", OPERATIONS, **query)
    assert len(by_worker) == 2
    assert all(count > 0 for count in by_worker.values())
    assert sum(by_worker.values()) == sent

    latency = "maas_graphql_operation_duration_seconds"
    for samples in await asyncio.gather(*(scrape(server.url) for _ in range(SCRAPES))):
        assert sample(samples, OPERATIONS, **query) == sent
        assert sample(samples, f"{latency}_count", **query) == sent
        assert sample(samples, f"{latency}_bucket", **query, le="+Inf") == sent


async def test_every_scrape_reports_each_workers_process_metrics_and_their_gc_totals(
    server: ServerProcess, metrics_dir: Path, redis: object
) -> None:
    await send_until_both_workers_answered(
        server, metrics_dir, "{ sessions(first: 1) { nodes { id } } }", "sessions"
    )
    query = {"operation": "sessions", "type": "query"}
    workers = set(per_process(metrics_dir, "counter", OPERATIONS, **query))
    assert len(workers) == 2
    for samples in await asyncio.gather(*(scrape(server.url) for _ in range(SCRAPES))):
        reported = {
            int(dict(labels)["pid"])
            for name, labels in samples
            if name == "process_resident_memory_bytes"
        }
        assert reported == workers
        for pid in workers:
            assert sample(samples, "process_cpu_seconds_total", pid=str(pid)) > 0
        assert sample(samples, "python_gc_collections_total", generation="0") > 0
        assert any(name == "python_info" for name, _ in samples)


async def test_subscriptions_are_summed_over_running_workers_and_a_dead_workers_counts_stay(
    server: ServerProcess, metrics_dir: Path, redis: object, connect: Connect
) -> None:
    query = {"operation": "session", "type": "query"}
    sent = await send_until_both_workers_answered(
        server, metrics_dir, '{ session(id: "none") { messageCount } }', "session"
    )
    writer = await connect(server.url, KEY_A)
    opened = 0
    async with contextlib.AsyncExitStack() as subscriptions:
        # A WebSocket per subscription, until both workers stream some.
        deadline = _deadline()
        while len(live := live_subscriptions(metrics_dir)) < 2:
            assert time.monotonic() < deadline, "the subscriptions never reached the second worker"
            socket = await connect(server.url, KEY_A, ws=True)
            await subscriptions.enter_async_context(subscribed(socket, writer, f"s{opened}"))
            opened += 1
        for samples in await asyncio.gather(*(scrape(server.url) for _ in range(SCRAPES))):
            assert sample(samples, SUBSCRIPTIONS, **SESSION_EVENTS) == opened

        victim, its_subscriptions = next(iter(live.items()))
        its_queries = per_process(metrics_dir, "counter", OPERATIONS, **query)[victim]
        assert its_queries > 0
        os.kill(victim, signal.SIGKILL)  # uvicorn starts another worker in its place

        still_open = opened - its_subscriptions
        deadline = _deadline()
        while sample(await scrape(server.url), SUBSCRIPTIONS, **SESSION_EVENTS) != still_open:
            assert time.monotonic() < deadline, "the dead worker's subscriptions still count"
            await asyncio.sleep(0.1)
        for samples in await asyncio.gather(*(scrape(server.url) for _ in range(SCRAPES))):
            assert sample(samples, SUBSCRIPTIONS, **SESSION_EVENTS) == still_open
            assert sample(samples, OPERATIONS, **query) == sent, "its counts stay in the totals"


async def send_tagged_until_both_workers_answered(
    server: ServerProcess, metrics_dir: Path
) -> list[str]:
    """Sends queries, each with its own X-Request-ID, until both workers have answered some;
    returns the ids."""
    query = '{ sessions(first: 1) { nodes { id } } session(id: "last") { messageCount } }'
    labels = {"operation": "session+sessions", "type": "query"}
    request_ids: list[str] = []
    deadline = _deadline()
    while len(per_process(metrics_dir, "counter", OPERATIONS, **labels)) < 2:
        assert time.monotonic() < deadline, "the requests never reached the second worker"
        batch = [f"last-{len(request_ids) + i}" for i in range(8)]
        answers = await asyncio.gather(
            *(post(server.url, query, key=KEY_A, headers={"X-Request-ID": rid}) for rid in batch)
        )
        assert [a.status_code for a in answers] == [200] * 8
        request_ids += batch
    return request_ids


def test_stopping_the_server_writes_each_workers_last_log_lines_and_removes_its_metrics(
    server: ServerProcess, metrics_dir: Path, redis: object
) -> None:
    """Last in this module: it stops the shared server. uvicorn's workers end by dying of the
    SIGTERM they raise again after shutting down, without exit handlers: the log lines they
    hold must be written before."""
    request_ids = asyncio.run(send_tagged_until_both_workers_answered(server, metrics_dir))
    assert metrics_dir.is_dir()
    server.stop()
    assert not metrics_dir.exists()

    logged = [json.loads(line) for line in server.log_path.read_text().splitlines()]
    access = {r.get("request_id") for r in logged if r["logger"] == "uvicorn.access"}
    assert set(request_ids) <= access
