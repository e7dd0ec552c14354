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

from tests.support.graphql_client import GRAPHQL_TRANSPORT_WS, http_client, ws_client

REPO_ROOT = Path(__file__).resolve().parents[2]
PROCESS_START_TIMEOUT_S = 30.0

Connect = Callable[..., Awaitable[AsyncClientSession]]


@pytest.fixture
async def connect(live_server: Callable[..., str]) -> AsyncIterator[Connect]:
    """Opens gql sessions: `await connect(url, key)` over HTTP, `ws=True` over a WebSocket
    (`protocol=` picks the subprotocol). All are closed before the servers stop."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_session(
            base_url: str,
            key: str | None = None,
            *,
            ws: bool = False,
            protocol: str = GRAPHQL_TRANSPORT_WS,
        ) -> AsyncClientSession:
            client = ws_client(base_url, key, protocol=protocol) if ws else http_client(base_url, key)
            return await stack.enter_async_context(client)

        yield open_session


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`python -m maas serve` in its own OS process."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        self._env = {**env, "PORT": str(self.port)}
        self._workdir = workdir
        self._log: Any = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "maas", "serve"],
            cwd=self._workdir,
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + PROCESS_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"maas serve exited:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"maas serve did not answer /health:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


@pytest.fixture
def server_processes(
    redis_url: str, tmp_path: Path
) -> Iterator[Callable[..., list[ServerProcess]]]:
    """Starts `count` real `maas serve` processes on the test Redis, with `api_keys`;
    each is terminated (SIGTERM, then kill) at teardown."""
    started: list[ServerProcess] = []

    def start(count: int, api_keys: dict[str, str]) -> list[ServerProcess]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("LLM_", "STM_", "MAX_", "API_KEYS", "REDIS_"))
        }
        env.update(
            REDIS_URL=redis_url,
            HOST="127.0.0.1",
            API_KEYS=json.dumps(api_keys),
            DATA_DIR=str(tmp_path / "data"),
            LOG_LEVEL="WARNING",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        )
        servers = []
        for _ in range(count):
            server = ServerProcess(env, tmp_path)
            started.append(server)
            servers.append(server.start())
        return servers

    yield start
    for server in started:
        server.stop()
