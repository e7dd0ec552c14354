"""A cancellation that arrives as the awaited thing completes is never lost (see
maas.cancellation_safe_wait_for): the server's own wiring installs the fix."""

from __future__ import annotations

import asyncio

import pytest

import maas.app  # noqa: F401  (importing the app installs the fix)
from tests.support.patience import patience


async def test_a_cancel_arriving_as_the_awaited_future_completes_still_cancels() -> None:
    inner = asyncio.get_running_loop().create_future()
    parked = asyncio.Event()

    async def victim() -> None:
        await asyncio.wait_for(inner, timeout=60)
        # Reached only when the cancellation was lost: Python 3.11's wait_for returned the
        # result instead. This is where a subscription then waited for events forever.
        parked.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(victim())
    await asyncio.sleep(0)  # the victim now waits inside wait_for
    inner.set_result("done")
    task.cancel()
    parking = asyncio.create_task(parked.wait())
    await asyncio.wait({task, parking}, timeout=patience(), return_when=asyncio.FIRST_COMPLETED)
    parking.cancel()
    assert not parked.is_set(), "the cancellation was lost"
    assert task.cancelled()


async def test_wait_for_still_times_out_and_returns_results() -> None:
    assert await asyncio.wait_for(asyncio.sleep(0, "value"), timeout=patience()) == "value"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.Event().wait(), timeout=0.01)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.Event().wait(), timeout=0)
    done = asyncio.get_running_loop().create_future()
    done.set_result(7)
    assert await asyncio.wait_for(done, timeout=0) == 7
