"""Readiness: every check runs at once within the time limit; a hung one is unavailable after
it, never stalls the answer; critical ones make it 503, the others "degraded"; a check still
running is joined, not started again; a status change is logged once."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from maas.readiness import Check, Readiness, Status
from tests.support.patience import patience

TIMEOUT = 0.2


def answering(status: Status) -> Check:
    async def probe() -> Status:
        return status

    return Check(f"answers-{status}", probe, critical=True)


class Hanging:
    """A probe that never answers until released; counts how often it was started."""

    def __init__(self) -> None:
        self.started = 0
        self.release = asyncio.Event()

    async def __call__(self) -> Status:
        self.started += 1
        await self.release.wait()
        return "ok"


async def failing() -> Status:
    raise ConnectionRefusedError("nobody home")


async def test_all_ok_is_ok() -> None:
    readiness = Readiness([answering("ok"), Check("b", answering("ok").probe, False)], TIMEOUT)
    assert await readiness.report() == ("ok", {"answers-ok": "ok", "b": "ok"})


async def test_a_hung_dependency_is_unavailable_after_the_timeout_and_the_rest_still_answer() -> (
    None
):
    hanging = Hanging()
    readiness = Readiness(
        [answering("ok"), Check("store", hanging, critical=False)], timeout_seconds=TIMEOUT
    )
    started = time.monotonic()
    async with asyncio.timeout(patience()):
        status, checks = await readiness.report()
    elapsed = time.monotonic() - started
    assert (status, checks) == ("degraded", {"answers-ok": "ok", "store": "unavailable"})
    # It waited the time limit for the hung check, then answered while that check still hung
    # (it ends only when released, below): the limit, not the dependency, ended the wait.
    assert elapsed >= TIMEOUT
    assert hanging.started == 1
    assert not hanging.release.is_set()
    hanging.release.set()
    await readiness.close()


async def test_a_critical_dependency_down_makes_it_unavailable() -> None:
    readiness = Readiness(
        [Check("redis", failing, critical=True), answering("ok")], timeout_seconds=TIMEOUT
    )
    status, checks = await readiness.report()
    assert status == "unavailable"
    assert checks["redis"] == "unavailable"
    response = await readiness.endpoint(None)  # type: ignore[arg-type]
    assert response.status_code == 503


async def test_a_degraded_critical_dependency_is_degraded_not_unavailable() -> None:
    readiness = Readiness([answering("degraded")], timeout_seconds=TIMEOUT)
    assert (await readiness.report())[0] == "degraded"
    assert (await readiness.endpoint(None)).status_code == 200  # type: ignore[arg-type]


async def test_concurrent_requests_join_the_check_already_running() -> None:
    hanging = Hanging()
    readiness = Readiness([Check("store", hanging, critical=False)], timeout_seconds=TIMEOUT)
    reports = await asyncio.gather(*(readiness.report() for _ in range(20)))
    assert {status for status, _ in reports} == {"degraded"}
    await readiness.report()  # the first is still hung: joined again
    assert hanging.started == 1
    hanging.release.set()
    await asyncio.sleep(0)
    assert await readiness.report() == ("ok", {"store": "ok"})
    assert hanging.started == 2
    await readiness.close()


async def test_a_change_of_status_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    up = asyncio.Event()

    async def probe() -> Status:
        if not up.is_set():
            raise ConnectionRefusedError
        return "ok"

    readiness = Readiness([Check("store", probe, critical=False)], timeout_seconds=TIMEOUT)
    with caplog.at_level(logging.INFO, logger="maas.readiness"):
        for _ in range(3):
            await readiness.report()
        up.set()
        for _ in range(3):
            await readiness.report()
    assert [r.getMessage() for r in caplog.records] == [
        "readiness: store is unavailable (ConnectionRefusedError)",
        "readiness: store is ok again",
    ]
