"""`maas extract`: the process that runs long-term extraction jobs beside the servers.

mem0's extraction spends CPU in Python (embedding, its store, its bookkeeping); inside a
server process it competes for the GIL with the event loop, and addMessages p99 grew several
times over. In a process of its own, at the lowest CPU priority, it takes only the CPU the
servers leave. `maas serve` starts one once jobs are waiting (ExtractionLauncher) and stops it
with itself; it dies with a server that crashes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from maas.app import WORKER_THREADS, build_events, build_memory_quota, build_redis, llm_config
from maas.extraction_wiring import build_extraction_worker
from maas.ltm_wiring import build_ltm
from maas.settings import Settings
from services.llm import LLMGateway
from stores.redis_client import prepare
from stores.redis_server import die_with_parent_hook

log = logging.getLogger("maas")


class ExtractionLauncher:
    """Starts `maas extract` once there is something to extract, and stops it with itself.

    An idle extraction process still costs ~100 MB and a second of CPU to import the stack, and
    most deployments never turn extraction on: so until the queue of jobs (any tenant's, any
    replica's, one Redis key) has a member, this only asks Redis whether it has, every
    `poll_s`. Jobs left by a server that stopped are found the same way at the next start.
    """

    def __init__(self, redis_url: str, *, cluster: bool, queue_key: str, poll_s: float = 1.0):
        self._redis_url, self._cluster, self._queue = redis_url, cluster, queue_key
        self._poll_s = poll_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="extraction-launcher", daemon=True)
        self._lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ExtractionLauncher:
        self._thread.start()
        return self

    def stop(self, timeout_s: float) -> None:
        self._stopped.set()
        self._thread.join(timeout=self._poll_s + 5)
        with self._lock:
            if self.process is not None:
                stop_extraction_process(self.process, timeout_s)

    def _watch(self) -> None:
        import redis
        import redis.cluster

        client: Any = None
        try:
            while not self._stopped.wait(self._poll_s):
                try:
                    if client is None:  # a cluster client connects as it is made
                        client = (
                            redis.cluster.RedisCluster.from_url(self._redis_url)
                            if self._cluster
                            else redis.Redis.from_url(self._redis_url)
                        )
                    waiting = client.exists(self._queue)
                except (redis.RedisError, redis.cluster.RedisClusterException):
                    continue  # Redis is away: the servers say so; ask again later
                if waiting:
                    with self._lock:
                        if not self._stopped.is_set():
                            self.process = start_extraction_process()
                    log.info("long-term extraction jobs are waiting: extraction process started")
                    break
        finally:
            if client is not None:
                client.close()
        # The child's death signal follows the thread that forked it (prctl PDEATHSIG): this
        # thread stays until stop().
        self._stopped.wait()


def start_extraction_process() -> subprocess.Popen[bytes]:
    """`maas extract` as a child that dies (SIGKILL, like a crash) if this process does."""
    return subprocess.Popen(
        [sys.executable, "-m", "maas", "extract"],
        preexec_fn=die_with_parent_hook(signal.SIGKILL),  # only calls prctl and getppid
    )


def stop_extraction_process(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_extraction(settings: Settings) -> None:
    """Run extraction jobs until SIGTERM or SIGINT, at STM_EXTRACTION_NICENESS."""
    set_niceness(settings.stm_extraction_niceness)
    asyncio.run(_extract_until_stopped(settings))
    # mem0 calls still running in worker threads (their jobs handed back to the queue) must
    # not finish after this: end the process without waiting for those threads.
    logging.shutdown()
    os._exit(0)


def set_niceness(niceness: int) -> None:
    """This process's niceness, and that of every thread it starts later. The default, 19, is
    the lowest priority that still gets a steady trickle of CPU (CFS weight 15 against a
    server's 1024): at nice 10 it still doubled addMessages p99 on a busy 2-core machine, and
    SCHED_IDLE starved it past its lease, so another worker extracted the same messages again.
    Beside other busy processes nice 19 gets next to nothing: extraction waits for them."""
    os.nice(niceness - os.nice(0))


async def _extract_until_stopped(settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="extract"))
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    redis = build_redis(settings)
    await prepare(redis)
    events = build_events(settings, redis)
    llm = LLMGateway(llm_config(settings))
    quota = build_memory_quota(settings, redis)
    # Its engine (the embedding model among it) is built by the first job: an idle worker
    # costs next to nothing.
    ltm, _ = build_ltm(settings, events, llm, loop, quota=quota)
    worker = build_extraction_worker(settings, redis, ltm, llm, asyncio.Event())
    worker.start()
    log.info("long-term extraction worker started")
    try:
        await stop.wait()
    finally:
        await worker.close()
        await events.close()
        await llm.close()
        await redis.aclose()
