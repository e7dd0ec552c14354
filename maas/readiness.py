"""/health/ready: every configured dependency, checked at once, each within a time limit.

A dependency that hangs is "unavailable" once the limit has passed; the endpoint never waits
longer. A check still running when the next request comes is joined, not started again, so a
flood of probes never piles up connections or threads on a dependency that hangs.

Redis and live events are what every request needs: when either is down the answer is 503 and a
load balancer should send traffic elsewhere. The vector store serves long-term memory only, and
every server process shares it, so its outage is "degraded" with 200: taking every process out of
rotation would stop short-term memory too, which works without it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request
from starlette.responses import JSONResponse

from stores.event_bus import RedisEventBus
from stores.redis_client import RedisClient, redis_health
from stores.store_health import StoreProbe

log = logging.getLogger("maas.readiness")

Status = Literal["ok", "degraded", "unavailable"]


@dataclass(frozen=True)
class Check:
    """One dependency: `probe` answers its status (or raises: unavailable); `critical` ones
    make the whole answer unavailable (503), the others degraded (200)."""

    name: str
    probe: Callable[[], Awaitable[Status]]
    critical: bool


class Readiness:
    """Runs the checks for /health/ready."""

    def __init__(self, checks: list[Check], timeout_seconds: float) -> None:
        self._checks = checks
        self._timeout = timeout_seconds
        self._running: dict[str, asyncio.Task[Status]] = {}
        self._last: dict[str, Status] = {}

    async def report(self) -> tuple[Status, dict[str, Status]]:
        """The overall status and each dependency's."""
        results = await asyncio.gather(*(self._status(check) for check in self._checks))
        statuses = {check.name: status for check, status in zip(self._checks, results, strict=True)}
        down = {c.name for c in self._checks if statuses[c.name] == "unavailable" and c.critical}
        if down:
            return "unavailable", statuses
        return ("ok" if set(statuses.values()) == {"ok"} else "degraded"), statuses

    async def endpoint(self, request: Request) -> JSONResponse:
        status, checks = await self.report()
        return JSONResponse(
            {"status": status, "checks": checks},
            status_code=503 if status == "unavailable" else 200,
        )

    async def _status(self, check: Check) -> Status:
        task = self._running.get(check.name)
        if task is None or task.done():
            task = self._running[check.name] = asyncio.ensure_future(check.probe())
            # Retrieved here, so a failure no waiter saw (all gave up) is not logged as lost.
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            # Shielded: a waiter that gives up leaves the check to others joining it.
            status = await asyncio.wait_for(asyncio.shield(task), self._timeout)
            reason = ""
        except TimeoutError:
            status, reason = "unavailable", f"no answer within {self._timeout:g} s"
        except Exception as exc:
            status, reason = "unavailable", type(exc).__name__
        self._log_change(check.name, status, reason)
        return status

    async def close(self) -> None:
        """Stops the checks still running (at shutdown)."""
        for task in self._running.values():
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        self._running.clear()

    def _log_change(self, name: str, status: Status, reason: str) -> None:
        """One line when a dependency's status changes, not one per probe."""
        before = self._last.get(name, "ok")
        self._last[name] = status
        if status == before:
            return
        if status == "ok":
            log.info("readiness: %s is ok again", name)
        else:
            log.warning("readiness: %s is %s%s", name, status, f" ({reason})" if reason else "")


def dependency_checks(
    redis: RedisClient, events: RedisEventBus, vector_store: StoreProbe, timeout_seconds: float
) -> list[Check]:
    """What /health/ready checks: Redis (every master of a cluster), live events (this
    process's subscription to Redis), and the vector store of long-term memory."""

    async def redis_status() -> Status:
        return await redis_health(redis, timeout_seconds)

    async def events_status() -> Status:
        return "ok" if events.healthy else "unavailable"

    async def vector_store_status() -> Status:
        await vector_store()
        return "ok"

    return [
        Check("redis", redis_status, critical=True),
        Check("events", events_status, critical=True),
        Check("vector_store", vector_store_status, critical=False),
    ]
