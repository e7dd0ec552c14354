"""Queries and mutations run by the schema's own steps (schema.lean_operation) answer exactly as
Strawberry's own execution answers with the same steps as extensions: the same data, the same
errors (message, path, locations, extensions), the same refusals raised, the same hooks of the
extensions and steps of the observers the schema was given, seeing the same things. Each
operation runs twice on each side, so the document cache is missed and then hit."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from resolvers.context import RequestContext
from schema import QueryLimits, build_schema
from services.errors import LimitExceeded, Unavailable
from services.stm_model import (
    AddResult,
    ContextWindow,
    Message,
    Role,
    SessionConfig,
    SessionInfo,
    Strategy,
)

NOW = datetime(2026, 11, 28, tzinfo=UTC)
EVENTS: list[tuple[Any, ...]] = []


def _message(seq: int, content: str) -> Message:
    return Message(id=f"m{seq}", seq=seq, role=Role.USER, content=content, tokens=3, created_at=NOW)


class _Stm:
    """The service, answering from memory; session ids "down" and "bug" fail."""

    async def add_messages(self, tenant: str, session_id: str, new: list[Any]) -> AddResult:
        self._fail(session_id)
        return AddResult([_message(i + 1, m.content) for i, m in enumerate(new)], [])

    async def get_session(self, tenant: str, session_id: str) -> SessionInfo | None:
        self._fail(session_id)
        if session_id == "missing":
            return None
        config = SessionConfig(Strategy.SLIDING_WINDOW, 20, 4000, 3600)
        return SessionInfo(session_id, 2, 6, 0, NOW, NOW, config)

    async def get_context(self, tenant: str, session: SessionInfo) -> ContextWindow:
        messages = [_message(1, "hi"), _message(2, "there")]
        return ContextWindow(messages, 6, Strategy.SLIDING_WINDOW, False, None, False)

    @staticmethod
    def _fail(session_id: str) -> None:
        if session_id == "down":
            raise Unavailable("Redis is unavailable.")
        if session_id == "bug":
            raise RuntimeError("a bug with a secret in it")


class _Watcher:
    """An observer (schema.operation_observer) recording each step and what it sees there."""

    def started(self, context: Any) -> str:
        EVENTS.append(("started", context.graphql_document is None))
        if _session_of(context) == "unstarted":
            raise RuntimeError("the watcher broke at the start")
        return "the operation"

    def executing(self, operation: str, context: Any) -> None:
        EVENTS.append(("executing", operation, context.operation_type.value))

    def ended(self, operation: str, context: Any, failure: BaseException | None) -> None:
        errors = getattr(context.result, "errors", None) or []
        codes = [(e.extensions or {}).get("code") for e in errors]
        EVENTS.append(("ended", operation, type(failure).__name__, codes))
        if _session_of(context) == "unwatched":
            raise RuntimeError("the watcher broke")


def _session_of(context: Any) -> str | None:
    return ((context.variables or {}).get("input") or {}).get("sessionId")


class _Hooks(SchemaExtension):
    """Records each hook it is given and what it sees there."""

    def on_operation(self):  # type: ignore[no-untyped-def]
        EVENTS.append(("operation",))
        try:
            yield
        except BaseException as error:
            EVENTS.append(("operation failed", type(error).__name__))
            raise
        result = self.execution_context.result
        errors = getattr(result, "errors", None) or []
        EVENTS.append(("operation left", [(e.extensions or {}).get("code") for e in errors]))

    def on_parse(self):  # type: ignore[no-untyped-def]
        EVENTS.append(("parse", self.execution_context.graphql_document is None))
        yield
        EVENTS.append(("parsed", self.execution_context.graphql_document is None))

    def on_validate(self):  # type: ignore[no-untyped-def]
        EVENTS.append(("validate", self.execution_context.pre_execution_errors is None))
        yield
        errors = self.execution_context.pre_execution_errors
        EVENTS.append(("validated", [e.message for e in errors or []]))

    def on_execute(self):  # type: ignore[no-untyped-def]
        EVENTS.append(("execute", self.execution_context.operation_type.value))
        yield
        EVENTS.append(("executed", type(self.execution_context.result).__name__))


class _Guard(SchemaExtension):
    """Refuses a write to session "refused", breaks on one to "broken"."""

    async def on_execute(self):  # type: ignore[no-untyped-def]
        variables = self.execution_context.variables or {}
        session_id = (variables.get("input") or {}).get("sessionId")
        if session_id == "refused":
            refused = LimitExceeded("Too many requests.", retryAfterSeconds=1)
            error = GraphQLError(refused.message, original_error=refused)
            self.execution_context.result = ExecutionResult(data=None, errors=[error])
        if session_id == "broken":
            raise RuntimeError("the guard broke")
        yield


WRITE = (
    "mutation Add($input: AddMessagesInput!) { addMessages(input: $input) "
    "{ sessionId messages { id seq tokenCount createdAt } duplicateIds } }"
)
READ = (
    "query Ctx($id: ID!) { session(id: $id) "
    "{ id messageCount context { messages { id role content tokenCount } truncated } } }"
)
ALL = {OperationType.QUERY, OperationType.MUTATION, OperationType.SUBSCRIPTION}
QUERIES = {OperationType.QUERY}


def _write(session_id: str) -> dict[str, Any]:
    message = {"role": "USER", "content": "hello"}
    return {"input": {"sessionId": session_id, "messages": [message]}}


# (document, variables, operationName, allowed operation types)
CORPUS: list[tuple[str | None, dict[str, Any] | None, str | None, set[OperationType]]] = [
    (WRITE, _write("s1"), None, ALL),
    (WRITE, _write("s1"), "Add", ALL),
    (READ, {"id": "s1"}, None, ALL),
    (READ, {"id": "missing"}, None, ALL),
    (READ, {"id": "down"}, None, ALL),
    (READ, {"id": "bug"}, None, ALL),
    (WRITE, _write("down"), None, ALL),
    (WRITE, _write("bug"), None, ALL),
    (WRITE, {"input": {"sessionId": "s1", "messages": [{"role": "NOBODY"}]}}, None, ALL),
    (WRITE, None, None, ALL),
    (READ + " " * 300, {"id": "s1"}, None, ALL),  # too long to cache
    ("{ session(id: ", None, None, ALL),
    ("{ sesion(id: 1) { id } }", None, None, ALL),
    ("{ session(id: 1) { id } } { __typename }", None, None, ALL),
    ("query A { __typename } query B { session(id: 1) { id } }", None, None, ALL),
    ("query A { __typename } query B { session(id: 1) { id } }", None, "B", ALL),
    ("query A { __typename }", None, "C", ALL),
    ("subscription { sessionEvents { type } }", None, None, QUERIES),
    (WRITE, _write("s1"), None, QUERIES),
    (None, None, None, ALL),
    ("", None, None, ALL),
    ("{ " + " ".join(["__typename"] * 60) + " }", None, None, ALL),
    ("{ sessions { edges { node { messages { pageInfo { hasNextPage } } } } } }", None, None, ALL),
    ("{ a: __typename b: __typename c: __typename d: __typename }", None, None, ALL),
    ("{ __schema { queryType { name } } }", None, None, ALL),
    (WRITE, _write("refused"), None, ALL),
    (WRITE, _write("broken"), None, ALL),
    (WRITE, _write("unwatched"), None, ALL),
    (WRITE, _write("unstarted"), None, ALL),
]

_ERROR_ID = re.compile(r"[0-9a-f]{16}")


def _schema(introspection: bool) -> strawberry.Schema:
    limits = QueryLimits(
        max_depth=4, max_aliases=3, max_tokens=50, cached_document_chars=200,
        introspection=introspection,
    )  # fmt: skip
    return build_schema(limits, observers=[_Watcher()], extensions=[_Hooks, _Guard])


async def _outcome(run: Any, operation: tuple[Any, ...]) -> Any:
    query, variables, name, allowed = operation
    EVENTS.clear()
    context = RequestContext(stm=_Stm(), tenant="t")  # type: ignore[arg-type]
    try:
        result = await run(query, variables, context, None, name, allowed)
    except Exception as error:  # the refusal is the outcome
        return ("raised", type(error).__name__, str(error), list(EVENTS))
    errors = [_ERROR_ID.sub("<id>", repr(e.formatted)) for e in result.errors or []]
    return (type(result).__name__, result.data, errors, result.extensions, list(EVENTS))


@pytest.mark.parametrize("introspection", [True, False])
async def test_own_steps_answer_as_strawberrys_own_execution(introspection: bool) -> None:
    lean, plain = _schema(introspection), _schema(introspection)
    assert type(lean).execute is not strawberry.Schema.execute
    for operation in CORPUS:
        for attempt in ("uncached", "cached"):
            ours = await _outcome(lean.execute, operation)
            theirs = await _outcome(
                lambda *args: strawberry.Schema.execute(plain, *args), operation
            )
            assert ours == theirs, (attempt, operation)


async def test_the_corpus_reaches_every_outcome() -> None:
    # The comparison above means little unless the corpus covers what differs by path.
    outcomes = [await _outcome(_schema(True).execute, operation) for operation in CORPUS]
    raised = {o[1] for o in outcomes if o[0] == "raised"}
    assert raised == {
        "MissingQueryError",
        "InvalidOperationTypeError",
        "CannotGetOperationTypeError",
    }
    codes = {
        code
        for o in outcomes
        if o[0] != "raised"
        for error in o[2]
        for code in re.findall(r"'code': '(\w+)'", error)
    }
    assert codes == {"BAD_USER_INPUT", "LIMIT_EXCEEDED", "UNAVAILABLE", "INTERNAL"}
    assert any(o[0] != "raised" and o[1] and not o[2] for o in outcomes)  # data, no errors
    assert any(e == ("operation failed", "RuntimeError") for o in outcomes for e in o[-1])
    ended = {e[2] for o in outcomes for e in o[-1] if e[0] == "ended"}
    assert ended == {"NoneType", "RuntimeError"} | raised


async def test_an_extension_that_raises_is_an_internal_error_with_an_id(caplog) -> None:
    # Strawberry answers the exception's message as it is, with no code, outside the hooks
    # that code errors: the schema's error processing codes and masks it on either path.
    broken = next(o for o in CORPUS if o[1] == _write("broken"))
    for run in (_schema(True).execute, lambda *a: strawberry.Schema.execute(_schema(True), *a)):
        caplog.clear()
        outcome = await _outcome(run, broken)
        [error] = outcome[2]
        assert "the guard broke" not in error
        assert "'code': 'INTERNAL'" in error
        assert "'errorId': '<id>'" in error
        assert "the guard broke" in caplog.text  # logged with its id, for the operator
