"""Strawberry's schema-extension runner, with the work that is the same for every result of an
operation done once per operation.

A subscription runs the runner's per-result steps for every event: which extensions report
results (Strawberry awaits every extension's `get_results`, most of which return nothing) and
which extensions hook a streamed result (Strawberry inspects every extension again). With 1,000
subscribers that was 1,000 times per event; now it is once per subscription. The hooks run
exactly as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import StreamResultContextManager
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.utils.await_maybe import await_maybe

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from types import TracebackType

    from strawberry.extensions.context import WrappedHook
    from strawberry.types import ExecutionContext, StreamExecutionResult


class LeanExtensionsRunner(SchemaExtensionsRunner):
    """SchemaExtensionsRunner that works out once which extensions take part in each result."""

    def __init__(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None
    ) -> None:
        super().__init__(execution_context, extensions)
        silent = SchemaExtension.get_results
        self._reporting = [e for e in self.extensions if type(e).get_results is not silent]
        self._stream_hooks: list[WrappedHook] | None = None

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self._reporting:
            data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data

    def on_stream_result(self, result: StreamExecutionResult) -> StreamResultContextManager:
        if self._stream_hooks is None:
            self._stream_hooks = StreamResultContextManager(self.extensions, result).hooks
        return _StreamResultHooks(self._stream_hooks, result)


class _StreamResultHooks(StreamResultContextManager):
    """Strawberry's context manager around one streamed result, given its hooks. One
    synchronous hook (the usual case: error masking) is entered as `with` would, without the
    exit stack Strawberry builds for every result."""

    def __init__(self, hooks: list[WrappedHook], result: StreamExecutionResult) -> None:
        self.hooks = hooks
        self.result = result
        self._single: AbstractContextManager[None] | None = None

    async def __aenter__(self) -> None:
        if len(self.hooks) == 1 and not self.hooks[0].is_async:
            self._single = self.hooks[0].hook(self.result)  # type: ignore[call-arg]
            self._single.__enter__()
            return
        await super().__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        # Like Strawberry's, never suppresses the exception.
        if self._single is not None:
            self._single.__exit__(exc_type, exc_val, exc_tb)
            return
        await super().__aexit__(exc_type, exc_val, exc_tb)
