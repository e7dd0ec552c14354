"""One execution per event for all the subscribers that would compute the same result.

A dashboard-sized fan-out (1,000 subscribers of one session) spent almost all of its time
executing the same selection on the same event once per subscriber. Every subscriber of a stream
receives the same event object (the resolvers convert each service event once, with
`shared_conversion`), so the result of an event can be reused by every subscriber whose result
would be the same. Two per-event executions are the same when they have

- the same event object (identity, never equality),
- the same operation of the same parsed document (identity; the parser cache hands out one
  document per query text),
- the same values of the variables the selection below the root field uses (root field
  arguments choose the stream; Strawberry's per-event root resolver ignores them),
- the same tenant, and no middleware (a resolve hook could answer each caller differently).

What the key leaves out must not change a result: resolvers below a subscription's root field
read nothing from `info` or the context but the tenant and its services. Results with errors are
never shared: every subscriber executes again and gets errors of its own. The memo of an event
dies with the event object (weak reference) and is bounded in any case.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from graphql import (
    ExecutionResult,
    FieldNode,
    OperationDefinitionNode,
    VariableNode,
    Visitor,
    visit,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable

    from graphql import FragmentDefinitionNode, Node

T = TypeVar("T")
R = TypeVar("R")

# Whether a subscriber's result was executed for it (False) or reused (True).
ResultObserver = Callable[[bool], None]
_UNSHARED = object()
_ABSENT = object()  # a variable neither given nor defaulted (not the same as null)


class SharedData(dict[str, Any]):
    """The `data` of a result several subscribers share: encoded to JSON once, and each message
    around it once per distinct envelope (see maas.graphql_view)."""

    __slots__ = ("_encoded", "_messages")
    MAX_MESSAGES = 16  # distinct envelopes kept: subscribers mostly number operations alike

    def encoded(self, encode: Callable[[object], str]) -> str:
        try:
            return self._encoded
        except AttributeError:
            self._encoded: str = encode(self)
            return self._encoded

    def message(self, envelope: Hashable, build: Callable[[], str]) -> str:
        """The message with this envelope (its other members) around the data, built once."""
        try:
            messages = self._messages
        except AttributeError:
            messages = self._messages = {}
        text = messages.get(envelope)
        if text is None:
            text = build()
            if len(messages) < self.MAX_MESSAGES:
                messages[envelope] = text
        return text


class SharedEventResults:
    """The memo of per-event results of one schema; `executor_class()` is what uses it.

    `on_result` hears of every subscriber's per-event result: reused or executed. With
    `share=False` every result is executed (and still reported).
    """

    def __init__(
        self,
        *,
        share: bool = True,
        max_events: int = 256,
        max_results_per_event: int = 64,
        on_result: ResultObserver | None = None,
    ) -> None:
        self.share = share
        self.max_events = max_events
        self.max_results_per_event = max_results_per_event
        self.on_result = on_result or _ignore
        # id(event) -> (weak reference to the event, {key: result or in-flight task})
        self._events: dict[int, tuple[weakref.ref[Any], dict[Hashable, Any]]] = {}

    @property
    def events_held(self) -> int:
        """How many events have results memoized now."""
        return len(self._events)

    def executor_class(self) -> type[StrawberryGraphQLCoreExecutionContext]:
        """Strawberry's executor, sharing per-event results through this memo."""
        return type("SharedEventExecutor", (_SharedEventExecutor,), {"memo": self})

    def results_of(self, event: object, *, create: bool = True) -> dict[Hashable, Any] | None:
        """The results memoized for event (None when it cannot be weakly referenced, or, unless
        `create`, when it has none yet)."""
        entry = self._events.get(id(event))
        if entry is not None and entry[0]() is event:
            return entry[1]
        if not create:
            return None
        try:
            ref = weakref.ref(event, functools.partial(self._forget, id(event)))
        except TypeError:
            return None
        if len(self._events) >= self.max_events:
            # Oldest first: the events still being delivered are the newest.
            del self._events[next(iter(self._events))]
        results: dict[Hashable, Any] = {}
        self._events[id(event)] = (ref, results)
        return results

    def _forget(self, key: int, ref: weakref.ref[Any]) -> None:
        # Called as the event dies; a newer event's entry under the same id has another ref.
        entry = self._events.get(key)
        if entry is not None and entry[0] is ref:
            self._events.pop(key, None)


def _ignore(_: bool) -> None:
    return None


class _SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """Executes a subscription's events through the memo; everything else as Strawberry does."""

    memo: SharedEventResults
    _per_event = False
    _share_key: Hashable = None

    def build_per_event_executor(self, payload: Any) -> Any:
        key = self._share_key
        if key is None:
            # Once per subscription: the copies made for its events inherit it.
            key = self._share_key = self._key_of_operation()
        if key is not _UNSHARED:
            # A result is there already (the usual case but for the first subscriber): hand it
            # over without copying this executor for the event.
            results = self.memo.results_of(payload, create=False)
            found = results.get(key) if results is not None else None
            if (
                found is not None
                and found[0] is self.operation
                and not isinstance(found[1], asyncio.Future)
            ):
                return _Reuse(self.memo, found[1])
        executor = super().build_per_event_executor(payload)
        executor._per_event = True
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        if not self._per_event:
            return super().execute_operation(serially)
        key = self._share_key
        results = None if key is _UNSHARED else self.memo.results_of(self.root_value)
        if results is None:
            return self._execute_own(serially)
        found = results.get(key)
        if found is not None and found[0] is self.operation:
            if isinstance(found[1], asyncio.Future):
                return self._await_shared(found[1], serially)
            self.memo.on_result(True)
            return found[1]
        result = self._execute_own(serially)
        if len(results) >= self.memo.max_results_per_event:
            return result
        if self.is_awaitable(result):
            task = asyncio.ensure_future(_with_shareable(result))
            results[key] = (self.operation, task)
            task.add_done_callback(functools.partial(_settle, results, key))
            return _await_first(task)
        shared = _shareable(result)
        if shared is None:
            return result
        results[key] = (self.operation, shared)
        return shared

    def _execute_own(self, serially: bool | None) -> Any:
        self.memo.on_result(False)
        return super().execute_operation(serially)

    async def _await_shared(self, task: asyncio.Future[_Outcome], serially: bool | None) -> Any:
        # shield: one subscriber going away must not cancel the others' result.
        _, shared = await asyncio.shield(task)
        if shared is not None:
            self.memo.on_result(True)
            return shared
        # That execution had errors: this subscriber's are its own.
        result = self._execute_own(serially)
        return await result if self.is_awaitable(result) else result

    def _key_of_operation(self) -> Hashable:
        if not self.memo.share:
            return _UNSHARED
        middleware = self.middleware_manager
        if middleware is not None and middleware.middlewares:
            return _UNSHARED
        if getattr(self, "operation_extensions", None):
            return _UNSHARED
        tenant = getattr(self.context_value, "tenant", _UNSHARED)
        if tenant is _UNSHARED:
            return _UNSHARED
        names = _event_variables(self.operation, self.fragment_definitions.values())
        coerced = self.variable_values.coerced
        try:
            values = tuple(sorted((name, _frozen(coerced.get(name, _ABSENT))) for name in names))
            hash(values)
        except TypeError:
            return _UNSHARED
        return (id(self.operation), tenant, values)


class _Reuse:
    """Stands in for a per-event executor when the event's result is already there:
    graphql-core only calls its execute_operation."""

    __slots__ = ("memo", "result")

    def __init__(self, memo: SharedEventResults, result: ExecutionResult) -> None:
        self.memo, self.result = memo, result

    def execute_operation(self, serially: bool | None = None) -> ExecutionResult:
        self.memo.on_result(True)
        return self.result


# An execution's own result, and the result others may reuse (None: it had errors).
_Outcome = tuple[Any, ExecutionResult | None]


async def _with_shareable(result: Awaitable[Any]) -> _Outcome:
    own = await result
    return own, _shareable(own)


async def _await_first(task: asyncio.Future[_Outcome]) -> Any:
    own, shared = await asyncio.shield(task)
    return own if shared is None else shared


def _shareable(result: Any) -> ExecutionResult | None:
    """The result others may reuse (its data marked shared), or None when it has errors."""
    if not isinstance(result, ExecutionResult) or result.errors or result.data is None:
        return None
    return ExecutionResult(SharedData(result.data), None, result.extensions)


def _settle(results: dict[Hashable, Any], key: Hashable, task: asyncio.Future[_Outcome]) -> None:
    """Replace a finished task by the result it shares; forget it when there is none."""
    entry = results.get(key)
    if entry is None or entry[1] is not task:
        return
    shared = None if task.cancelled() or task.exception() is not None else task.result()[1]
    if shared is None:
        del results[key]
    else:
        results[key] = (entry[0], shared)


class _VariableNames(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        self.names.add(node.name.value)


def _event_variables(
    operation: OperationDefinitionNode, fragments: Iterable[FragmentDefinitionNode]
) -> frozenset[str]:
    """The variables an event's execution may read: every use but the root fields' arguments
    (fragments count whole, wherever they are spread)."""
    collector = _VariableNames()
    parts: list[Node] = [*(operation.directives or ()), *fragments]
    for selection in operation.selection_set.selections:
        if isinstance(selection, FieldNode):
            parts.extend(selection.directives or ())
            if selection.selection_set is not None:
                parts.append(selection.selection_set)
        else:
            parts.append(selection)
    for part in parts:
        visit(part, collector)
    return frozenset(collector.names)


def _frozen(value: Any) -> Hashable:
    """A hashable stand-in for a coerced variable value, equal only for equal values of the
    same types (1, 1.0 and True are equal in Python, not in a JSON result)."""
    if isinstance(value, dict):
        return (dict, tuple(sorted((k, _frozen(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return (list, tuple(_frozen(v) for v in value))
    return (type(value), value)


class _Identity(Generic[T]):
    """A key equal only to itself: the object it holds, by identity (held, so its id is not
    reused while the key lives)."""

    __slots__ = ("obj",)

    def __init__(self, obj: T) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.obj is self.obj


def shared_conversion(convert: Callable[[T], R], maxsize: int = 64) -> Callable[[T], R]:
    """convert, memoized by the identity of its argument: every subscriber of a stream gets the
    same service event object, and so the same converted one (which SharedEventResults needs)."""
    cached = functools.lru_cache(maxsize=maxsize)(lambda key: convert(key.obj))

    @functools.wraps(convert)
    def converted(obj: T) -> R:
        return cached(_Identity(obj))

    return converted
