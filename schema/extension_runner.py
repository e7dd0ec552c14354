"""Strawberry's schema-extension runner, with what is the same for every operation worked out
once per extension class, and what is the same for every result of an operation once per
operation.

For each phase of each operation (operation, parsing, validation, execution) Strawberry asks
every extension whether it hooks the phase, wraps each hook in a new context-manager factory
(`contextlib.contextmanager` of a bound method, `functools.wraps` included) and enters them on
an `AsyncExitStack`. With the seven extensions of this schema that was about a tenth of a
write's server CPU. Here the factory of each (extension class, phase) is made once; a phase
with one synchronous hook enters it as `with` would, several synchronous hooks go on a plain
`ExitStack`, and only a phase with an asynchronous hook gets an `AsyncExitStack`. The hooks run
exactly as before, in the same order.

A subscription runs the runner's per-result steps for every event: which extensions report
results (Strawberry awaits every extension's `get_results`, most of which return nothing) and
which extensions hook a streamed result (Strawberry inspects every extension again). With 1,000
subscribers that was 1,000 times per event; now it is once per subscription.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import StreamResultContextManager
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.utils.await_maybe import await_maybe

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager, AbstractContextManager
    from types import TracebackType

    from strawberry.extensions.context import WrappedHook
    from strawberry.types import ExecutionContext, StreamExecutionResult

# A phase's hook of one extension: (makes its context manager from the extension, is async)
_HookFactory = tuple[Callable[[SchemaExtension], Any], bool]


class LeanExtensionsRunner(SchemaExtensionsRunner):
    """SchemaExtensionsRunner that works out once which extensions take part in each phase
    and each result."""

    def __init__(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None
    ) -> None:
        super().__init__(execution_context, extensions)
        silent = SchemaExtension.get_results
        self._reporting = [e for e in self.extensions if type(e).get_results is not silent]
        self._stream_hooks: list[WrappedHook] | None = None

    def operation(self) -> _Phase:  # type: ignore[override]
        return self._phase("on_operation")

    def validation(self) -> _Phase:  # type: ignore[override]
        return self._phase("on_validate")

    def parsing(self) -> _Phase:  # type: ignore[override]
        return self._phase("on_parse")

    def executing(self) -> _Phase:  # type: ignore[override]
        return self._phase("on_execute")

    def _phase(self, hook_name: str) -> _Phase:
        hooks = []
        for extension in self.extensions:
            factory = _hook_factory(type(extension), hook_name)
            if factory is not None:
                hooks.append((factory[0](extension), factory[1]))
        return _Phase(hooks)

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


@functools.cache
def _hook_factory(extension_class: type[SchemaExtension], hook_name: str) -> _HookFactory | None:
    """How Strawberry's ExtensionContextManagerBase.get_hook turns the class's hook into a
    context manager, decided once per class: None when the class does not hook the phase."""
    hook = getattr(extension_class, hook_name)
    if hook is getattr(SchemaExtension, hook_name):
        return None
    if inspect.isgeneratorfunction(hook):
        return contextlib.contextmanager(hook), False
    if inspect.isasyncgenfunction(hook):
        return contextlib.asynccontextmanager(hook), True
    if not callable(hook):
        raise ValueError(
            f"Hook {hook_name} on {extension_class} must be callable, received {hook!r}"
        )
    if inspect.iscoroutinefunction(hook):

        @contextlib.asynccontextmanager
        async def awaited(extension: SchemaExtension) -> AsyncIterator[None]:
            await hook(extension)
            yield

        return awaited, True

    @contextlib.contextmanager
    def called(extension: SchemaExtension) -> Iterator[None]:
        hook(extension)
        yield

    return called, False


class _Phase:
    """The hooks of one phase, entered in order and left in reverse, as Strawberry's exit
    stack does."""

    __slots__ = ("_entered", "_hooks")

    def __init__(self, hooks: list[tuple[Any, bool]]) -> None:
        self._hooks = hooks
        self._entered: Any = None

    async def __aenter__(self) -> None:
        hooks = self._hooks
        if not hooks:
            return
        if len(hooks) == 1:
            manager, is_async = hooks[0]
            if is_async:
                await manager.__aenter__()
            else:
                manager.__enter__()
            self._entered = manager
            return
        if not any(is_async for _, is_async in hooks):
            stack = contextlib.ExitStack()
            for manager, _ in hooks:
                stack.enter_context(manager)
            self._entered = stack
            return
        async_stack = contextlib.AsyncExitStack()
        self._entered = async_stack
        for manager, is_async in hooks:
            if is_async:
                await async_stack.enter_async_context(manager)
            else:
                async_stack.enter_context(manager)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        # Like Strawberry's, never suppresses the exception (whatever a hook returns).
        entered = self._entered
        if entered is None:
            return
        if isinstance(entered, contextlib.AsyncExitStack) or (
            len(self._hooks) == 1 and self._hooks[0][1]
        ):
            await entered.__aexit__(exc_type, exc_val, exc_tb)
        else:
            entered.__exit__(exc_type, exc_val, exc_tb)

    def __enter__(self) -> None:
        # Strawberry's synchronous execution (execute_sync): every hook must be synchronous.
        stack = self._entered = contextlib.ExitStack()
        for manager, is_async in self._hooks:
            if is_async:
                raise RuntimeError(
                    f"SchemaExtension hook {manager} failed to complete synchronously."
                )
            stack.enter_context(manager)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self._entered.__exit__(exc_type, exc_val, exc_tb)


class _StreamResultHooks(StreamResultContextManager):
    """Strawberry's context manager around one streamed result, given its hooks. One
    synchronous hook (the usual case: error masking) is entered as `with` would, without the
    exit stack Strawberry builds for every result."""

    def __init__(self, hooks: list[WrappedHook], result: StreamExecutionResult) -> None:
        self.hooks = hooks
        self.result = result
        self._single: AbstractContextManager[None] | AbstractAsyncContextManager[None] | None
        self._single = None

    async def __aenter__(self) -> None:
        if len(self.hooks) == 1 and not self.hooks[0].is_async:
            single = self.hooks[0].hook(self.result)  # type: ignore[call-arg]
            single.__enter__()
            self._single = single
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
            self._single.__exit__(exc_type, exc_val, exc_tb)  # type: ignore[union-attr]
            return
        await super().__aexit__(exc_type, exc_val, exc_tb)
