"""A real Redis Cluster of local redis-server masters (no replicas) for tests and fault drills."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from stores.redis_server import RedisServerProcess
from tests.support.patience import patience

# A loaded 2-core machine slows every step tenfold; an idle one never waits this long.
CLUSTER_READY_TIMEOUT_S = patience()
_POLL_INTERVAL_S = 0.05
_COMMAND_TIMEOUT_S = patience()
_HOST = "127.0.0.1"
# Redis 6.2 and 7 listen for the cluster bus on port + 10000 (7's cluster-port option is unused).
_BUS_PORT_OFFSET = 10_000
_MAX_PORT = 65_535
_PORT_TRIES = 200


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
    return True


def _ephemeral_port_floor() -> int:
    """The lowest port the kernel hands out to outgoing connections (Linux; else IANA's 49152)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49_152


def free_cluster_port() -> int:
    """A free port whose cluster-bus port (port + 10000) is free too.

    Both lie below the kernel's ephemeral range when there is room: a killed node's port must
    stay free until restart() rebinds it, and the kernel may give an ephemeral port to any
    outgoing connection meanwhile.
    """
    floor = _ephemeral_port_floor()
    low, high = 10_000, min(floor, _MAX_PORT + 1) - _BUS_PORT_OFFSET
    for _ in range(_PORT_TRIES):
        if high > low:
            port = random.randrange(low, high)
        else:
            # No room below the ephemeral range: take the kernel's choice, if its bus port fits.
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((_HOST, 0))
                port = int(sock.getsockname()[1])
            if port + _BUS_PORT_OFFSET > _MAX_PORT:
                continue
        if _port_is_free(port) and _port_is_free(port + _BUS_PORT_OFFSET):
            return port
    raise RuntimeError("No free port pair (port, port + 10000) found for a cluster node")


def _slot_ranges(masters: int) -> list[range]:
    """16384 slots split into `masters` contiguous, near-equal ranges (as redis-cli does)."""
    bounds = [i * REDIS_CLUSTER_HASH_SLOTS // masters for i in range(masters + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(masters)]


@dataclass(frozen=True)
class ClusterNodeInfo:
    """One master of a LocalRedisCluster: where it listens and which slots it owns."""

    index: int
    port: int
    pid: int | None  # None while the node is killed or stopped
    node_id: str
    slots: range

    @property
    def url(self) -> str:
        return f"redis://{_HOST}:{self.port}"


class LocalRedisCluster:
    """`masters` redis-server processes formed into one Redis Cluster, without replicas.

    Every node has its own directory under `data_dir` (AOF, nodes.conf, log). With
    cluster-require-full-coverage off, a killed master fails only its own slots; restart()
    brings it back on the same port with the same node id and slots. `appendfsync="always"`
    (the default) makes every acknowledged write survive a SIGKILL; None turns the AOF off.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        masters: int = 3,
        node_timeout_ms: int = 1000,
        appendfsync: str | None = "always",
        ready_timeout: float = CLUSTER_READY_TIMEOUT_S,
        binary: str | None = None,
    ) -> None:
        if masters < 1:
            raise ValueError("A cluster needs at least one master")
        self.data_dir = Path(data_dir)
        self.node_timeout_ms = node_timeout_ms
        self.ready_timeout = ready_timeout
        self._slot_ranges = _slot_ranges(masters)
        self._node_ids: list[str] = []
        self._servers = [
            RedisServerProcess(
                self.data_dir / f"node{index}",
                start_timeout=patience(),
                persistent=appendfsync is not None,
                binary=binary,
                extra_args=self._node_args(self.data_dir / f"node{index}", appendfsync),
                free_port=free_cluster_port,
            )
            for index in range(masters)
        ]

    def _node_args(self, node_dir: Path, appendfsync: str | None) -> list[str]:
        args = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(node_dir.resolve() / "nodes.conf"),
            "--cluster-node-timeout", str(self.node_timeout_ms),
            # Without it, one dead master makes every node refuse every key (CLUSTERDOWN).
            "--cluster-require-full-coverage", "no",
        ]  # fmt: skip
        if appendfsync is not None:
            args += ["--appendfsync", appendfsync]
        return args

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the masters, assign slots, introduce them, and wait until the cluster is ok.

        Takes about 2 s idle: a master that starts reports cluster_state:fail (and refuses keys)
        for redis's fixed CLUSTER_WRITABLE_DELAY of 2000 ms. restart() waits the same.
        """
        if self._node_ids:
            return self
        stale = sorted(self.data_dir.glob("node*/nodes.conf"))
        if stale:
            raise RuntimeError(
                f"{self.data_dir} already holds a cluster ({stale[0]}): use a new dir"
            )
        try:
            for server in self._servers:
                server.start()
            self._form()
            self.wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self) -> None:
        node_ids = []
        for index, (server, slots) in enumerate(zip(self._servers, self._slot_ranges, strict=True)):
            with self._client(server.port) as node:
                # Distinct epochs up front, as redis-cli does: no epoch-collision round later.
                node.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
                # 6.2 has no ADDSLOTSRANGE; one ADDSLOTS with every slot of the range is fine.
                node.execute_command("CLUSTER", "ADDSLOTS", *slots)
                node_ids.append(node.execute_command("CLUSTER", "MYID").decode())
        with self._client(self._servers[0].port) as first:
            for server in self._servers[1:]:
                first.execute_command("CLUSTER", "MEET", _HOST, server.port)
        self._node_ids = node_ids

    def stop(self) -> None:
        """Shut every node down. Idempotent."""
        for server in self._servers:
            server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests read -------------------------------------------------------------------

    @property
    def nodes(self) -> list[ClusterNodeInfo]:
        """Every master, in index order (killed ones included, with pid None)."""
        if not self._node_ids:
            raise RuntimeError("LocalRedisCluster is not started")
        return [
            ClusterNodeInfo(index, server.port, server.pid, node_id, slots)
            for index, (server, node_id, slots) in enumerate(
                zip(self._servers, self._node_ids, self._slot_ranges, strict=True)
            )
        ]

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT of a running node, for `RedisCluster.from_url`."""
        for node in self.nodes:
            if node.pid is not None:
                return node.url
        raise RuntimeError("No node of the cluster is running")

    def slot_owner(self, slot: int) -> int:
        """Index of the master that owns `slot`."""
        for index, slots in enumerate(self._slot_ranges):
            if slot in slots:
                return index
        raise ValueError(f"slot {slot} is not in 0..{REDIS_CLUSTER_HASH_SLOTS - 1}")

    def node_for_key(self, key: str | bytes) -> int:
        """Index of the master that owns `key` (hash tags honoured)."""
        return self.slot_owner(key_slot(key.encode() if isinstance(key, str) else key))

    def hash_tag_on(self, index: int, nth: int = 0) -> str:
        """The `nth` hash tag, braces included (e.g. "{t7}"), whose keys live on node `index`."""
        found = -1
        for n in range(100_000):
            tag = f"{{t{n}}}"
            if self.node_for_key(tag) == index:
                found += 1
                if found == nth:
                    return tag
        raise ValueError(f"no hash tag found for node {index}")

    # -- faults ----------------------------------------------------------------------------

    def kill(self, index: int) -> None:
        """SIGKILL node `index` (no save): its slots fail, the other masters keep serving."""
        self._servers[index].kill()

    def restart(self, index: int) -> None:
        """Start node `index` again on its port, data dir and nodes.conf; wait until all is ok.

        It rejoins as the owner of its slots (no replica took them over) with what its AOF holds.
        """
        self._servers[index].restart()
        self.wait_until_healthy()

    def restart_killed(self) -> None:
        """Restart every killed node, then wait until the cluster is healthy."""
        for server in self._servers:
            if server.pid is None:
                server.restart()
        self.wait_until_healthy()

    def wait_until_failed(self, index: int) -> None:
        """Wait until every running node flags node `index` as `fail` (node timeout + gossip).

        Needs a majority of the masters running: a minority can never agree on a failure.
        """
        node_id = self._node_ids[index]

        def failed() -> bool:
            for server in self._running():
                with self._client(server.port) as node:
                    flags = _nodes_by_id(node.execute_command("CLUSTER", "NODES"))[node_id][2]
                if "fail" not in flags.split(","):
                    return False
            return True

        self._wait(failed, f"node {index} to be marked fail")

    def wait_until_healthy(self) -> None:
        """Wait until every node runs, says cluster_state:ok, and all agree on nodes and slots."""
        self._wait(self._healthy, "the cluster to be healthy")

    def flushall(self) -> None:
        """Empty every running master (test isolation)."""
        for server in self._running():
            with self._client(server.port) as node:
                node.flushall()

    # -- internals -------------------------------------------------------------------------

    def _running(self) -> Iterator[RedisServerProcess]:
        return (server for server in self._servers if server.pid is not None)

    @staticmethod
    def _client(port: int) -> redis.Redis:
        return redis.Redis(
            host=_HOST,
            port=port,
            socket_timeout=_COMMAND_TIMEOUT_S,
            socket_connect_timeout=_COMMAND_TIMEOUT_S,
            decode_responses=False,
        )

    def _healthy(self) -> bool:
        if any(server.pid is None for server in self._servers):
            return False
        expected = {
            node_id: (server.port, slots)
            for node_id, server, slots in zip(
                self._node_ids, self._servers, self._slot_ranges, strict=True
            )
        }
        for server in self._servers:
            with self._client(server.port) as node:
                info = node.execute_command("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in info:
                    return False
                if _nodes_as_seen(node.execute_command("CLUSTER", "NODES")) != expected:
                    return False
        return True

    def _wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last_error: Exception | None = None
        while True:
            try:
                if condition():
                    return
            except (redis.RedisError, OSError) as exc:
                last_error = exc  # a node still loading or not yet listening: poll again
            if time.monotonic() > deadline:
                detail = f" (last error: {last_error!r})" if last_error else ""
                raise TimeoutError(
                    f"Timed out after {self.ready_timeout:.0f} s waiting for {what}{detail}; "
                    f"node logs are in {self.data_dir}/node*/redis.log"
                )
            time.sleep(_POLL_INTERVAL_S)


def _nodes_by_id(reply: bytes) -> dict[str, list[str]]:
    """CLUSTER NODES lines split into fields, by node id."""
    lines = reply.decode().splitlines()
    return {fields[0]: fields for fields in (line.split() for line in lines) if fields}


def _nodes_as_seen(reply: bytes) -> dict[str, tuple[int, range]] | None:
    """{node id: (port, slots)} from CLUSTER NODES, or None if any link or flag is unhealthy."""
    seen: dict[str, tuple[int, range]] = {}
    for node_id, fields in _nodes_by_id(reply).items():
        # id addr flags master ping-sent pong-recv epoch link-state slot...
        address, flags, link_state, slot_fields = fields[1], fields[2], fields[7], fields[8:]
        if set(flags.split(",")) & {"fail", "fail?", "handshake", "noaddr"}:
            return None
        if link_state != "connected":
            return None
        port = int(address.split("@")[0].rpartition(":")[2])
        ranges = [tuple(int(bound) for bound in spec.split("-")) for spec in slot_fields]
        if len(ranges) > 1:
            return None  # we assign one contiguous range per node
        slots = range(ranges[0][0], ranges[0][-1] + 1) if ranges else range(0)
        seen[node_id] = (port, slots)
    return seen
