"""Integration tests for stores.redis_server: a real redis-server child process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from stores.redis_server import RedisServerProcess, find_redis_server_binary
from tests.support.patience import patience


def _is_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped by us) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def test_find_binary_returns_executable() -> None:
    assert Path(find_redis_server_binary()).is_file()


def test_ephemeral_server_serves_and_stops(tmp_path: Path) -> None:
    server = RedisServerProcess(tmp_path, start_timeout=patience(), persistent=False)
    url = server.start()
    assert url == f"redis://127.0.0.1:{server.port}/0"
    with redis.Redis.from_url(url) as client:
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"

    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=patience()).close()
    server.stop()  # idempotent
    assert not (tmp_path / "appendonly.aof").exists()


def test_context_manager_stops_server(tmp_path: Path) -> None:
    with RedisServerProcess(tmp_path, start_timeout=patience(), persistent=False) as server:
        pid = server.pid
        assert pid is not None
        with redis.Redis.from_url(server.url) as client:
            assert client.ping()
    assert server.pid is None


def test_persistent_data_survives_restart(tmp_path: Path) -> None:
    with (
        RedisServerProcess(tmp_path, start_timeout=patience()) as first,
        redis.Redis.from_url(first.url) as client,
    ):
        client.set("k1", "v1")
        client.hset("h", mapping={"a": "1", "b": "2"})

    with (
        RedisServerProcess(tmp_path, start_timeout=patience()) as second,
        redis.Redis.from_url(second.url) as client,
    ):
        assert client.get("k1") == b"v1"
        assert client.hgetall("h") == {b"a": b"1", b"b": b"2"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="stale check reads /proc")
def test_stale_server_on_same_dir_is_replaced(tmp_path: Path) -> None:
    first = RedisServerProcess(tmp_path, start_timeout=patience())
    second = RedisServerProcess(tmp_path, start_timeout=patience())
    try:
        with redis.Redis.from_url(first.start()) as client:
            client.set("survivor", "yes")
        first_pid = first.pid
        assert first_pid is not None

        # As if our previous run crashed: a new process on the same dir finds the old pidfile.
        with redis.Redis.from_url(second.start()) as client:
            assert not _is_alive(first_pid)
            assert client.get("survivor") == b"yes"
        assert second.port != first.port
        assert (tmp_path / "redis.pid").read_text().strip() == str(second.pid)
    finally:
        second.stop()
        first.stop()  # only reaps: the process is already gone


def test_missing_binary_raises_clear_error(tmp_path: Path) -> None:
    server = RedisServerProcess(
        tmp_path, start_timeout=patience(), binary="/nonexistent/redis-server"
    )
    with pytest.raises(RuntimeError, match=r"redis-server binary .* does not exist"):
        server.start()
    server.stop()  # nothing started: a no-op


def test_failed_start_reports_log_tail(tmp_path: Path) -> None:
    # Occupy a port so redis cannot bind it; an explicit port is not retried.
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = RedisServerProcess(tmp_path, start_timeout=patience(), persistent=False, port=port)
        with pytest.raises(RuntimeError, match="Address already in use"):
            server.start()


def test_extra_args_reach_the_server_and_override_ours(tmp_path: Path) -> None:
    extra = ("--appendfsync", "always", "--maxmemory", "12mb")  # ours says everysec
    with (
        RedisServerProcess(tmp_path, start_timeout=patience(), extra_args=extra) as server,
        redis.Redis.from_url(server.url) as client,
    ):
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        assert client.config_get("maxmemory") == {"maxmemory": str(12 * 1024 * 1024)}


def test_free_port_callable_picks_the_port(tmp_path: Path) -> None:
    picked: list[int] = []

    def pick() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            picked.append(sock.getsockname()[1])
        return picked[-1]

    with RedisServerProcess(
        tmp_path, start_timeout=patience(), persistent=False, free_port=pick
    ) as server:
        assert picked == [server.port]


def test_killed_server_restarts_on_its_port_with_acknowledged_writes(tmp_path: Path) -> None:
    server = RedisServerProcess(
        tmp_path, start_timeout=patience(), extra_args=("--appendfsync", "always")
    )
    try:
        with redis.Redis.from_url(server.start()) as client:
            for n in range(100):
                client.set(f"k{n}", n)
        port, pid = server.port, server.pid
        assert pid is not None

        server.kill()  # SIGKILL: no SHUTDOWN SAVE, only what the AOF already holds
        assert server.pid is None
        assert not _is_alive(pid)
        server.kill()  # idempotent

        with redis.Redis.from_url(server.restart()) as client:
            assert (server.port, server.pid != pid) == (port, True)
            assert client.mget([f"k{n}" for n in range(100)]) == [
                str(n).encode() for n in range(100)
            ]
    finally:
        server.stop()


def test_restart_of_a_running_server_keeps_its_port(tmp_path: Path) -> None:
    with RedisServerProcess(tmp_path, start_timeout=patience(), persistent=False) as server:
        port, pid = server.port, server.pid
        server.restart()
        assert (server.port, server.pid != pid) == (port, True)
        with redis.Redis.from_url(server.url) as client:
            assert client.ping()


def test_restart_before_start_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="never started"):
        RedisServerProcess(tmp_path, start_timeout=patience()).restart()


def test_two_servers_get_different_ports(tmp_path: Path) -> None:
    with (
        RedisServerProcess(tmp_path / "a", start_timeout=patience(), persistent=False) as a,
        RedisServerProcess(tmp_path / "b", start_timeout=patience(), persistent=False) as b,
    ):
        assert a.port != b.port
        with redis.Redis.from_url(a.url) as ca, redis.Redis.from_url(b.url) as cb:
            ca.set("which", "a")
            cb.set("which", "b")
            assert ca.get("which") == b"a"
            assert cb.get("which") == b"b"


def test_port_held_by_another_redis_is_not_mistaken_for_ours(tmp_path: Path) -> None:
    with RedisServerProcess(tmp_path / "a", start_timeout=patience(), persistent=False) as other:
        clash = RedisServerProcess(
            tmp_path / "b", start_timeout=patience(), persistent=False, port=other.port
        )
        with pytest.raises(RuntimeError, match="failed to start"):
            clash.start()
        with redis.Redis.from_url(other.url) as client:
            assert client.ping()  # the other server was left alone


_ORPHAN_SCRIPT = """
import sys, time
from pathlib import Path
from stores.redis_server import RedisServerProcess
from tests.support.patience import patience
server = RedisServerProcess(Path(sys.argv[1]), persistent=False, start_timeout=patience())
server.start()
print(server.pid, flush=True)
time.sleep(patience())  # until the test kills this process
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_server_dies_when_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert parent.stdout is not None
        redis_pid = int(parent.stdout.readline())
        assert _is_alive(redis_pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + patience()
        while _is_alive(redis_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _is_alive(redis_pid)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_server_started_from_a_thread_outlives_that_thread(tmp_path: Path) -> None:
    """The death signal follows the forking thread: a server (re)started from a worker thread,
    as tests do with asyncio.to_thread, must not stop when that thread ends."""
    server = RedisServerProcess(tmp_path, persistent=False, start_timeout=patience())
    starter = threading.Thread(target=server.start)
    starter.start()
    starter.join()
    try:
        assert server._process is not None
        # Stopped by the signal, it would exit within milliseconds of the thread's end.
        with pytest.raises(subprocess.TimeoutExpired):
            server._process.wait(timeout=2)
        assert redis.Redis.from_url(server.url).ping()
    finally:
        server.stop()
