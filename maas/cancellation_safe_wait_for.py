"""Python 3.11's `asyncio.wait_for` loses a cancellation, replaced by 3.12's.

On 3.11, when a task is cancelled in the same loop iteration as the awaitable it waits for
completes, `wait_for` returns the result and drops the cancellation (CPython gh-86296, fixed in
3.12 by building `wait_for` on `asyncio.timeout`). redis-py waits for every socket write with
`asyncio.wait_for`, so a WebSocket client closing while its subscription was starting left the
subscription's task cancelled in name only: it went on to wait for events forever, and the
server's shutdown waited on it. Installing 3.12's implementation fixes it for every library
that calls `asyncio.wait_for`; on 3.12 and later this does nothing.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


async def wait_for(fut: Awaitable[T], timeout: float | None) -> T:  # noqa: ASYNC109
    """asyncio.wait_for as Python 3.12 implements it."""
    if timeout is not None and timeout <= 0:
        # Not even started unless already done, as the standard one does.
        future = asyncio.ensure_future(fut)
        if future.done():
            return future.result()
        await _cancel_and_wait(future)
        try:
            return future.result()
        except asyncio.CancelledError as exc:
            raise TimeoutError from exc
    async with asyncio.timeout(timeout):
        return await fut


async def _cancel_and_wait(future: asyncio.Future[Any]) -> None:
    # Like asyncio.tasks._cancel_and_wait: wait for the cancelled future to finish, while a
    # cancellation of our own still reaches us.
    finished = asyncio.get_running_loop().create_future()

    def release(_: asyncio.Future[Any]) -> None:
        if not finished.done():
            finished.set_result(None)

    future.add_done_callback(release)
    try:
        future.cancel()
        await finished
    finally:
        future.remove_done_callback(release)


def install() -> None:
    """Use the 3.12 implementation wherever `asyncio.wait_for` is looked up (3.11 only)."""
    if sys.version_info < (3, 12):
        asyncio.wait_for = asyncio.tasks.wait_for = wait_for  # type: ignore[assignment]
