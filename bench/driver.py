"""A closed-loop load driver: N workers, each with one operation in flight at a time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence

import psutil

from bench.stats import LoadResult

Operation = Callable[[], Awaitable[bool]]  # one request; True when it succeeded


class CpuMeter:
    """CPU seconds used by this process and, optionally, other processes (by pid; the server
    may be several processes, e.g. uvicorn's workers, whose CPU is summed)."""

    def __init__(
        self, server_pid: int | Sequence[int] | None = None, redis_pid: int | None = None
    ) -> None:
        pids = [server_pid] if isinstance(server_pid, int) else list(server_pid or ())
        self._server = [psutil.Process(pid) for pid in pids]
        self._redis = [psutil.Process(redis_pid)] if redis_pid else []

    @staticmethod
    def _cpu(processes: list[psutil.Process]) -> float | None:
        if not processes:
            return None
        total = 0.0
        for process in processes:
            # A worker that died (and was replaced) takes its CPU time with it.
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def sample(self) -> tuple[float, float | None, float | None]:
        """(own CPU, server CPU, redis CPU) in seconds since each process started."""
        return time.process_time(), self._cpu(self._server), self._cpu(self._redis)


def _delta(end: float | None, start: float | None) -> float | None:
    return None if end is None or start is None else end - start


async def closed_loop(
    name: str,
    ops: Sequence[Operation],
    *,
    warmup_s: float,
    duration_s: float,
    meter: CpuMeter | None = None,
) -> LoadResult:
    """Run every op in its own loop for warmup_s + duration_s; measure the last duration_s.

    A request counts when it both started and finished inside the measured window.
    """
    meter = meter or CpuMeter()
    loop = asyncio.get_running_loop()
    begin = loop.time()
    start, end = begin + warmup_s, begin + warmup_s + duration_s
    latencies: list[float] = []
    errors = 0
    clock = time.perf_counter
    start_pc = clock() + warmup_s
    end_pc = start_pc + duration_s

    async def worker(op: Operation) -> None:
        nonlocal errors
        while True:
            t0 = clock()
            if t0 >= end_pc:
                return
            ok = await op()
            t1 = clock()
            if t0 >= start_pc and t1 <= end_pc:
                latencies.append(t1 - t0)
                if not ok:
                    errors += 1

    async def sampler() -> tuple[tuple[float, float | None, float | None], ...]:
        await asyncio.sleep(max(0.0, start - loop.time()))
        first = meter.sample()
        await asyncio.sleep(max(0.0, end - loop.time()))
        return first, meter.sample()

    sampling = asyncio.create_task(sampler())
    await asyncio.gather(*(worker(op) for op in ops))
    (c0, s0, r0), (c1, s1, r1) = await sampling
    return LoadResult(
        name=name,
        concurrency=len(ops),
        duration_s=duration_s,
        latencies_s=latencies,
        errors=errors,
        client_cpu_s=c1 - c0,
        server_cpu_s=_delta(s1, s0),
        redis_cpu_s=_delta(r1, r0),
    )
