"""Runs an ASGI app under uvicorn in a background thread on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

from tests.support.patience import patience


class ThreadedServer:
    """A real HTTP/WebSocket server for an ASGI app, in this process."""

    def __init__(self, app: Any, *, lifespan: str = "on", **config: Any) -> None:
        self.app = app
        self._config = dict(log_level="warning", access_log=False, lifespan=lifespan, **config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadedServer:
        """Serve in a daemon thread; return once the server accepts requests."""
        # Binding port 0 ourselves avoids the find-then-bind race on a free port.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(self.app, **self._config))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="test-server", daemon=True
        )
        self._sock, self._server, self._thread = sock, server, thread
        thread.start()
        deadline = time.monotonic() + patience()
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("test server failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Shut the server down (running its lifespan shutdown) and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        thread = self._thread
        if thread is not None:
            thread.join(timeout=patience())
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None
        if thread is not None and thread.is_alive():
            # uvicorn waits for every connection's task: one that ignores its cancellation
            # would hold a real server's shutdown forever too.
            raise RuntimeError("test server did not shut down: a connection's task is stuck")

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class FakeService:
    """A fake third-party API served by a ThreadedServer: subclasses set `app` and `url_path`."""

    app: Any
    url_path = ""

    def __init__(self) -> None:
        self.base_url = ""
        self._server: ThreadedServer | None = None

    def start(self) -> Self:
        """Serve in a daemon thread and return once the server accepts requests."""
        if self._server is None:
            self._server = ThreadedServer(self.app, lifespan="off").start()
            self.base_url = f"{self._server.url}{self.url_path}"
        return self

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
