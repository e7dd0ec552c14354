"""The processes the benchmark runs: redis-server (unless REDIS_URL is set) and the server."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from maas.settings import Settings
from stores.redis_server import RedisServerProcess

HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0  # a busy 2-core machine took 35 s to start two workers


def embedded_ltm_settings(
    data_dir: str | Path, redis_url: str, llm_url: str, **extra: Any
) -> Settings:
    """Settings of an in-process LTM on the embedded store, the given Redis and test LLM."""
    values: dict[str, Any] = {
        "data_dir": Path(data_dir),
        "redis_url": redis_url,
        "api_keys": {},
        "llm_base_url": llm_url,
        "llm_api_key": "bench",
        "vector_store_provider": "embedded",
        **extra,
    }
    return Settings(**values)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when this process dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def hook() -> None:
        prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return hook


class BenchRedis:
    """REDIS_URL when set, else a throwaway redis-server in a temporary directory."""

    def __init__(self) -> None:
        self.url = os.environ.get("REDIS_URL") or ""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server: RedisServerProcess | None = None

    @property
    def pid(self) -> int | None:
        """The local redis-server's pid (None for an external Redis)."""
        return self._server.pid if self._server else None

    def start(self) -> str:
        if not self.url:
            self._tmp = tempfile.TemporaryDirectory(prefix="maas-bench-")
            self._server = RedisServerProcess(Path(self._tmp.name), persistent=False)
            self.url = self._server.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


class BenchServer:
    """uvicorn serving an app factory (default: the bench app) in its own process, with one
    worker unless told otherwise; `env` adds settings, `ws` picks uvicorn's WebSocket
    implementation, `code` serves another checkout's code, `log` takes the server's output
    (else it goes to this process's). With `cli`, the server is `python -m maas serve` (the
    app as deployed: its logging, its metrics directory for several workers) instead."""

    def __init__(
        self,
        redis_url: str,
        app: str = "bench.server:create_bench_app",
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
        ws: str | None = None,
        code: Path | None = None,
        log: Path | None = None,
        cli: bool = False,
    ) -> None:
        self.redis_url = redis_url
        self.app = app
        self.cli = cli
        self.workers = workers
        self.ws = ws  # uvicorn's WebSocket implementation; None: its default
        # Where the server's code is: this checkout, or another revision's files (whose modules
        # then come first on the server's sys.path; the dependencies are this environment's).
        self.code = code or Path(__file__).resolve().parent.parent
        self.extra_env = env or {}
        self.log = log
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the server itself, or uvicorn's workers."""
        if self.workers == 1:
            return [self.pid]
        return [
            child.pid
            for child in psutil.Process(self.pid).children()
            if "spawn_main" in " ".join(child.cmdline())  # not multiprocessing's resource tracker
        ]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"LLM_API_KEY", "API_KEYS"}}
        env.update(REDIS_URL=self.redis_url, STM_SESSION_TTL_SECONDS="0", **self.extra_env)
        if self.cli:
            env.update(HOST=HOST, PORT=str(self.port))
        return env

    def _command(self) -> list[str]:
        if self.cli:
            return [sys.executable, "-m", "maas", "serve", "--workers", str(self.workers)]
        return [
            sys.executable, "-m", "uvicorn", self.app, "--factory",
            "--host", HOST, "--port", str(self.port), "--workers", str(self.workers),
            "--log-level", "warning", "--no-access-log",
            *(["--ws", self.ws] if self.ws else []),
        ]  # fmt: skip

    def start(self) -> None:
        """Start uvicorn and wait until /health answers (and every worker is up)."""
        self.port = free_port()
        command = self._command()
        output = self.log.open("ab") if self.log is not None else None
        self._process = subprocess.Popen(
            command,
            env=self._env(),
            cwd=self.code,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            process_group=0,  # Ctrl-C reaches only us; we stop the server ourselves
            preexec_fn=_die_with_parent(),
        )
        if output is not None:
            output.close()  # the child has its own descriptor
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"server exited with code {self._process.returncode}")
            with contextlib.suppress(OSError):
                url = f"http://{HOST}:{self.port}/health"
                with urllib.request.urlopen(url, timeout=1) as reply:
                    if reply.status == 200 and self._workers_ready():
                        return
            time.sleep(0.05)
        raise RuntimeError("server did not answer /health in time")

    def _workers_ready(self) -> bool:
        """Every worker serves: a few requests on connections kept open reached each of them
        (one answering /health does not mean all of them do)."""
        if self.workers == 1:
            return True
        sockets: list[socket.socket] = []
        try:
            for _ in range(8 * self.workers):
                sock = socket.create_connection((HOST, self.port), timeout=2)
                sockets.append(sock)
                sock.sendall(f"GET /health HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            for sock in sockets:
                sock.recv(4096)
            return len(self.worker_pids()) == self.workers and all(
                count > 0 for count in self.connections_per_worker()
            )
        finally:
            for sock in sockets:
                sock.close()

    def connections_per_worker(self) -> list[int]:
        """Established client connections each worker holds now."""
        return [
            sum(
                1
                for c in psutil.Process(pid).net_connections("tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == self.port
            )
            for pid in self.worker_pids()
        ]

    def rss_mb(self) -> float:
        """Resident memory of the serving processes, summed."""
        return sum(psutil.Process(pid).memory_info().rss for pid in self.worker_pids()) / 2**20

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
