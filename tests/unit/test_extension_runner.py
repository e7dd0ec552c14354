"""The lean extension runner runs every kind of hook as Strawberry's own runner does: same
order in, reverse order out, errors passed on the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from schema.extension_runner import LeanExtensionsRunner

LOG: list[str] = []


class Generators(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        LOG.append("gen operation in")
        yield
        LOG.append("gen operation out")

    def on_parse(self) -> Iterator[None]:
        LOG.append("gen parse in")
        yield
        LOG.append("gen parse out")

    def on_execute(self) -> Iterator[None]:
        LOG.append("gen execute in")
        try:
            yield
        except Exception as error:
            LOG.append(f"gen execute saw {type(error).__name__}, swallows it")
            return
        LOG.append("gen execute out")


class AsyncGenerators(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:
        LOG.append("agen operation in")
        yield
        LOG.append("agen operation out")

    async def on_validate(self) -> AsyncIterator[None]:
        LOG.append("agen validate in")
        yield
        LOG.append("agen validate out")


class Callables(SchemaExtension):
    def on_operation(self) -> None:  # type: ignore[override]
        LOG.append("call operation")

    async def on_execute(self) -> None:  # type: ignore[override]
        LOG.append("async call execute")


@strawberry.type
class Query:
    @strawberry.field
    def ok(self) -> int:
        return 1

    @strawberry.field
    def fails(self) -> int:
        raise ValueError("no")


class Lean(strawberry.Schema):
    def create_extensions_runner(self, execution_context: Any, extensions: Any) -> Any:
        return LeanExtensionsRunner(execution_context=execution_context, extensions=extensions)


EXTENSIONS = [Generators, AsyncGenerators, Callables, Generators]


@pytest.mark.parametrize("query", ["{ ok }", "{ fails }", "{ nope }", "{ ok "])
async def test_hooks_run_as_strawberrys_runner_runs_them(query: str) -> None:
    logs = []
    for schema_class in (strawberry.Schema, Lean):
        LOG.clear()
        result = await schema_class(query=Query, extensions=EXTENSIONS).execute(query)
        logs.append((LOG[:], result.data, [e.message for e in result.errors or []]))
    assert logs[0] == logs[1]
    assert logs[0][0]


async def test_a_hook_raising_on_its_way_out_reaches_the_hooks_around_it() -> None:
    class Raising(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            yield
            raise RuntimeError("after execution")

    outcomes = []
    for schema_class in (strawberry.Schema, Lean):
        LOG.clear()
        schema = schema_class(query=Query, extensions=[Generators, Raising])
        result = await schema.execute("{ ok }")
        outcomes.append((LOG[:], result.data, [e.message for e in result.errors or []]))
    assert outcomes[0] == outcomes[1]
    assert "gen execute saw RuntimeError, swallows it" in outcomes[0][0]


async def test_an_exception_through_a_phase_reaches_every_hook_as_on_strawberrys_stack() -> None:
    class RaisingIn(SchemaExtension):
        def on_parse(self) -> Iterator[None]:
            raise RuntimeError("before parsing")
            yield  # a generator hook all the same

    outcomes = []
    for schema_class in (strawberry.Schema, Lean):
        LOG.clear()
        schema = schema_class(query=Query, extensions=[Generators, AsyncGenerators, RaisingIn])
        result = await schema.execute("{ ok }")
        outcomes.append((LOG[:], result.data, [e.message for e in result.errors or []]))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][2] == ["before parsing"]
    assert "gen parse in" in outcomes[0][0]
