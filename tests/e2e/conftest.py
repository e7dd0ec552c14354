"""End-to-end fixtures: gql clients closed at teardown, and real `maas serve` processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql.client import AsyncClientSession

from maas.app import create_app
from maas.settings import Settings
from tests.conftest import RedisTarget
from tests.support.fake_llm import FakeLLM
from tests.support.graphql_client import (
    API_KEYS,
    GRAPHQL_TRANSPORT_WS,
    KEY_A,
    http_client,
    ws_client,
)
from tests.support.patience import PROCESS_START_S, patience
from tests.support.threaded_server import ThreadedServer

REPO_ROOT = Path(__file__).resolve().parents[2]

Connect = Callable[..., Awaitable[AsyncClientSession]]


@pytest.fixture
async def connect(live_server: Callable[..., str]) -> AsyncIterator[Connect]:
    """Opens gql sessions: `await connect(url, key)` over HTTP, `ws=True` over a WebSocket
    (`protocol=` picks the subprotocol). All are closed before the servers stop (servers of
    `live_server` are set up before, so torn down after, this fixture)."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_session(
            base_url: str,
            key: str | None = None,
            *,
            ws: bool = False,
            protocol: str = GRAPHQL_TRANSPORT_WS,
        ) -> AsyncClientSession:
            client = (
                ws_client(base_url, key, protocol=protocol) if ws else http_client(base_url, key)
            )
            return await stack.enter_async_context(client)

        yield open_session


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`python -m maas serve --workers N` in its own OS process."""

    def __init__(self, env: dict[str, str], workdir: Path, workers: int = 1) -> None:
        self.workers = workers
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        self._env = {**env, "PORT": str(self.port)}
        self._workdir = workdir
        self._log: Any = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        """Starts the process; `wait_ready` waits for it to answer."""
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "maas", "serve", "--workers", str(self.workers)],
            cwd=self._workdir,
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self) -> ServerProcess:
        assert self.process is not None
        # A boot that takes 4 s idle took 40-100 s on a loaded machine.
        deadline = time.monotonic() + PROCESS_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"maas serve exited:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=patience()).status_code == 200:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"maas serve did not answer /health:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            # Generous: a killed parent would leave its workers running and its files behind.
            try:
                self.process.wait(timeout=PROCESS_START_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


def process_env(
    redis_target: RedisTarget, data_dir: Path, api_keys: dict[str, str], **extra_env: str
) -> dict[str, str]:
    """The environment of a `maas serve` process on the test Redis: this process's, less what
    configures MaaS, plus `api_keys` and `extra_env`. Tracing is off unless `extra_env` names a
    collector: a process would otherwise export to whatever listens on the default endpoint,
    and wait seconds at shutdown for one that does not."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(
            ("LLM_", "STM_", "MAX_", "API_KEYS", "REDIS_", "PROMETHEUS_MULTIPROC_DIR", "OTEL_")
        )
    }
    env.update(
        REDIS_URL=redis_target.url,
        REDIS_CLUSTER=str(redis_target.is_cluster).lower(),
        HOST="127.0.0.1",
        API_KEYS=json.dumps(api_keys),
        DATA_DIR=str(data_dir),
        LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
    )
    if "OTEL_EXPORTER_OTLP_ENDPOINT" not in extra_env:
        env["OTEL_SDK_DISABLED"] = "true"
    env.update(extra_env)
    return env


def boot(servers: list[ServerProcess]) -> list[ServerProcess]:
    """Start them all, then wait: they boot in parallel."""
    for server in servers:
        server.start()
    return [server.wait_ready() for server in servers]


@pytest.fixture(scope="module")
def server_processes(
    redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., list[ServerProcess]]]:
    """Starts `count` real `maas serve` processes of `workers` workers each on the test Redis,
    with `api_keys` and any `extra_env` variables; each is terminated (SIGTERM, then kill) when
    the module's tests are done. Module-scoped because a process takes seconds to boot: tests
    that share them request `redis` to start empty. `each=[{...}, ...]` boots one process per
    dict of further variables, all at once (count is then their number)."""
    tmp_path = tmp_path_factory.mktemp("processes")
    started: list[ServerProcess] = []

    def start(
        count: int,
        api_keys: dict[str, str],
        workers: int = 1,
        *,
        each: list[dict[str, str]] | None = None,
        **extra_env: str,
    ) -> list[ServerProcess]:
        envs = [{**extra_env, **own} for own in each] if each else [extra_env] * count
        servers = [
            ServerProcess(
                process_env(redis_target, tmp_path / "data", api_keys, **env), tmp_path, workers
            )
            for env in envs
        ]
        started.extend(servers)
        return boot(servers)

    yield start
    for server in started:
        server.stop()


# Two tenants whose limits the two-process tests drive, beside API_KEYS' two, which have none.
KEY_QUOTA = "sk-test-quota-3f9a17c2"
KEY_RATE = "sk-test-rate-6b02de58"
LIMITED_KEYS = {KEY_QUOTA: "quota-tenant", KEY_RATE: "rate-tenant"}
MAX_MESSAGES, MAX_MEMORIES = 20, 3
BURST = 5
TENANT_LIMITS = {
    "quota-tenant": {"quota_max_messages": MAX_MESSAGES, "quota_max_memories": MAX_MEMORIES},
    # One request per 1000 s after the burst: in a test, exactly the burst goes through.
    "rate-tenant": {"rate_limit_requests_per_second": 0.001, "rate_limit_burst": BURST},
}


@pytest.fixture(scope="session")
def _two_process_pairs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, list[ServerProcess]]]:
    """The pairs `two_processes` booted, by Redis URL; stopped when the session ends."""
    pairs: dict[str, list[ServerProcess]] = {}
    yield pairs
    for pair in pairs.values():
        for server in pair:
            server.stop()


@pytest.fixture(scope="module")
def two_processes(
    redis_target: RedisTarget,
    _two_process_pairs: dict[str, list[ServerProcess]],
    tmp_path_factory: pytest.TempPathFactory,
) -> list[ServerProcess]:
    """Two `maas serve` processes on the test Redis with the keys of API_KEYS and LIMITED_KEYS
    and TENANT_LIMITS, booted once per Redis for every module that asks (booting is most of
    such a module's time); tests request `redis` to start empty, and a tenant's limits are its
    own, so the modules' tests do not meet."""
    pair = _two_process_pairs.get(redis_target.url)
    if pair is None:
        tmp_path = tmp_path_factory.mktemp("two-processes")
        env = process_env(
            redis_target,
            tmp_path / "data",
            {**API_KEYS, **LIMITED_KEYS},
            TENANT_LIMITS=json.dumps(TENANT_LIMITS),
        )
        pair = _two_process_pairs[redis_target.url] = boot(
            [ServerProcess(env, tmp_path) for _ in range(2)]
        )
    return pair


@pytest.fixture(scope="module")
def module_server(
    redis_target: RedisTarget, fake_llm_server: FakeLLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., str]]:
    """Like `live_server`, but one server per distinct settings for the whole module: starting
    and stopping a server per test would be most of the suite's time. The server holds no
    state of its own, so tests stay independent by requesting `redis` (an empty database)."""
    servers: dict[str, ThreadedServer] = {}
    data_dir = tmp_path_factory.mktemp("data")

    def start(**overrides: Any) -> str:
        key = repr(sorted(overrides.items()))
        if key not in servers:
            values: dict[str, Any] = {
                "redis_url": redis_target.url,
                "redis_cluster": redis_target.is_cluster,
                "data_dir": data_dir,
                "llm_base_url": fake_llm_server.base_url,
                "llm_api_key": "test-key",
                "llm_max_retries": 0,
                "llm_timeout_seconds": patience(),
                **overrides,
            }
            settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
            servers[key] = ThreadedServer(create_app(settings)).start()
        return servers[key].url

    yield start
    for server in servers.values():
        server.stop()


@pytest.fixture
def url(module_server: Callable[..., str], redis: Any) -> str:
    """A live server with two tenants' keys (API_KEYS) on an empty database; its base URL."""
    return module_server(api_keys=API_KEYS)


@pytest.fixture
async def api(url: str, connect: Connect) -> AsyncClientSession:
    """A gql session over HTTP as tenant A."""
    return await connect(url, KEY_A)


@pytest.fixture
async def fresh_api(live_server: Callable[..., str], connect: Connect) -> AsyncClientSession:
    """A client of a server of its own, with empty stores (module_server's are shared)."""
    return await connect(live_server())


@pytest.fixture
def serve_on(fake_llm_server: FakeLLM, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """`serve_on(redis_url, **settings)`: a live server of the test's own on a Redis of the
    test's own (one it may break), with two tenants' keys; its base URL."""
    servers: list[ThreadedServer] = []

    def start(redis_url: str, **overrides: Any) -> str:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            redis_url=redis_url,
            api_keys=API_KEYS,
            data_dir=tmp_path / "data",
            llm_base_url=fake_llm_server.base_url,
            llm_api_key="test-key",
            **overrides,
        )
        server = ThreadedServer(create_app(settings)).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
async def http() -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """`http(url)`: an httpx client on a live server, closed after the test."""
    clients: list[httpx.AsyncClient] = []

    def make(url: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=url, timeout=patience())
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
