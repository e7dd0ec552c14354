"""Strawberry's schema-extension runner, with what is the same for every operation worked out
once per extension class, and what is the same for every result of an operation once per
operation.

For each phase of each operation (operation, parsing, validation, execution) Strawberry asks
every extension whether it hooks the phase, wraps each hook in a new context-manager factory
(`contextlib.contextmanager` of a bound method, `functools.wraps` included) and enters them on
an `AsyncExitStack`. With the seven extensions of this schema that was about a tenth of a
write's server CPU. Here the factory of each (extension class, phase) is made once; a generator
hook (the usual kind) is driven with next() as contextlib would drive it, other hooks are
entered as `with` would, and an exit stack is built only when an exception passes through the
phase. The hooks run exactly as before, in the same order.

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

# A phase's hook of one extension: (makes its generator or context manager from the
# extension, how it is entered)
_HookFactory = tuple[Callable[[SchemaExtension], Any], int]


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

    def hooked(self, hook_name: str) -> _Phase | None:
        """The phase of the extensions that hook it, or None when none does (entering it
        would cost an operation more than most hooks do)."""
        hooks = self._hooks(hook_name)
        return _Phase(hooks) if hooks else None

    def _phase(self, hook_name: str) -> _Phase:
        return _Phase(self._hooks(hook_name))

    def _hooks(self, hook_name: str) -> list[tuple[Any, int]]:
        hooks = []
        for extension in self.extensions:
            factory = _hook_factory(type(extension), hook_name)
            if factory is not None:
                hooks.append((factory[0](extension), factory[1]))
        return hooks

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


# How a phase's hook of one extension is entered and left.
_GENERATOR = 0  # a generator (the usual hook): driven with next(), as contextmanager would
_SYNC = 1  # a synchronous context manager
_ASYNC = 2  # an asynchronous context manager


@functools.cache
def _hook_factory(extension_class: type[SchemaExtension], hook_name: str) -> _HookFactory | None:
    """How Strawberry's ExtensionContextManagerBase.get_hook turns the class's hook into a
    context manager, decided once per class: None when the class does not hook the phase."""
    hook = getattr(extension_class, hook_name)
    if hook is getattr(SchemaExtension, hook_name):
        return None
    if inspect.isgeneratorfunction(hook):
        return hook, _GENERATOR
    if inspect.isasyncgenfunction(hook):
        return contextlib.asynccontextmanager(hook), _ASYNC
    if not callable(hook):
        raise ValueError(
            f"Hook {hook_name} on {extension_class} must be callable, received {hook!r}"
        )
    if inspect.iscoroutinefunction(hook):

        @contextlib.asynccontextmanager
        async def awaited(extension: SchemaExtension) -> AsyncIterator[None]:
            await hook(extension)
            yield

        return awaited, _ASYNC

    @contextlib.contextmanager
    def called(extension: SchemaExtension) -> Iterator[None]:
        hook(extension)
        yield

    return called, _SYNC


class _Phase:
    """The hooks of one phase, entered in order and left in reverse, as Strawberry's exit
    stack does. Without an exception on the way out (nearly always), each hook is left
    directly; otherwise the hooks still to leave go on an exit stack, whose rules (what each
    hook sees, which exception comes out) then apply as they did."""

    __slots__ = ("_hooks", "_stack")

    def __init__(self, hooks: list[tuple[Any, int]]) -> None:
        self._hooks = hooks
        self._stack: contextlib.ExitStack | None = None

    async def __aenter__(self) -> None:
        for hook, kind in self._hooks:
            if kind == _GENERATOR:
                try:
                    next(hook)
                except StopIteration:
                    raise RuntimeError("generator didn't yield") from None
            elif kind == _SYNC:
                hook.__enter__()
            else:
                await hook.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        # Like Strawberry's, never suppresses the exception (whatever a hook returns).
        hooks = self._hooks
        if exc_type is not None:
            await _exit_stack(hooks).__aexit__(exc_type, exc_val, exc_tb)
            return
        for index in range(len(hooks) - 1, -1, -1):
            hook, kind = hooks[index]
            try:
                if kind == _GENERATOR:
                    _leave(hook)
                elif kind == _SYNC:
                    hook.__exit__(None, None, None)
                else:
                    await hook.__aexit__(None, None, None)
            except BaseException as error:  # the hooks around it see it, as on a stack
                stack = _exit_stack(hooks[:index])
                stack.push(_raiser(error))
                await stack.__aexit__(None, None, None)  # raises it, unless a hook swallows it
                return

    def __enter__(self) -> None:
        # Strawberry's synchronous execution (execute_sync): every hook must be synchronous.
        stack = self._stack = contextlib.ExitStack()
        for hook, kind in self._hooks:
            if kind == _ASYNC:
                raise RuntimeError(f"SchemaExtension hook {hook} failed to complete synchronously.")
            stack.enter_context(_started(hook) if kind == _GENERATOR else hook)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        assert self._stack is not None
        self._stack.__exit__(exc_type, exc_val, exc_tb)


def _leave(generator: Iterator[None]) -> None:
    """Leave a generator hook without an exception, as contextmanager's __exit__ does."""
    try:
        next(generator)
    except StopIteration:
        return
    try:
        raise RuntimeError("generator didn't stop")
    finally:
        generator.close()


def _started(generator: Iterator[None]) -> contextlib.AbstractContextManager[None]:
    """contextmanager's manager around a generator hook (to enter, or already entered)."""
    return contextlib.contextmanager(lambda: generator)()


def _exit_stack(hooks: list[tuple[Any, int]]) -> contextlib.AsyncExitStack:
    """An exit stack holding these entered hooks, as if each had been entered on it."""
    stack = contextlib.AsyncExitStack()
    for hook, kind in hooks:
        if kind == _GENERATOR:
            stack.push(_started(hook))
        elif kind == _SYNC:
            stack.push(hook)
        else:
            stack.push_async_exit(hook)
    return stack


def _raiser(error: BaseException) -> Callable[..., None]:
    def leave(*_: object) -> None:
        raise error

    return leave


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
