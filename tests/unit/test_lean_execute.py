"""Resolver results are awaited directly only without an abort signal; with one, graphql-core's
race against the signal still runs."""

from __future__ import annotations

import asyncio

import pytest
from graphql.pyutils import AbortController

from schema.lean_execute import DirectAwaits


def _executor(signal: object) -> DirectAwaits:
    executor = object.__new__(DirectAwaits)  # only the signal matters to with_abort_signal
    executor.abort_signal = signal  # type: ignore[assignment]
    return executor


async def test_without_a_signal_the_awaitable_itself_comes_back() -> None:
    future = asyncio.get_running_loop().create_future()
    assert _executor(None).with_abort_signal(future) is future
    future.cancel()


async def test_with_a_signal_an_abort_still_interrupts_a_hanging_resolver() -> None:
    controller = AbortController()
    hanging = asyncio.get_running_loop().create_future()
    awaiting = asyncio.ensure_future(_executor(controller.signal).with_abort_signal(hanging))
    await asyncio.sleep(0)
    controller.abort(RuntimeError("stopped"))
    with pytest.raises(RuntimeError, match="stopped"):
        await asyncio.wait_for(awaiting, 5)
    assert hanging.cancelled()
