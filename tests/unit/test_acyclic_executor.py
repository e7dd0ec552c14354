"""A GraphQL execution leaves no reference cycle: its context is freed when the caller drops
it, without the garbage collector."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.acyclic_executor import AcyclicExecution


@strawberry.type
class Query:
    @strawberry.field
    async def greeting(self, info: strawberry.Info) -> str:
        # gather: the helper graphql-core hands resolvers, which reaches the executor.
        (name,) = await info._raw_info.async_helpers.gather([_name(info.context)])
        return f"hello {name}"


async def _name(context: Any) -> str:
    return context.name


class Context:
    name = "ann"


def _context_outlives_execution(executor: type[StrawberryGraphQLCoreExecutionContext]) -> bool:
    schema = strawberry.Schema(query=Query, execution_context_class=executor)
    context = Context()
    alive = weakref.ref(context)
    gc.disable()
    try:
        result = asyncio.run(schema.execute("{ greeting }", context_value=context))
        assert result.data == {"greeting": "hello ann"}
        del context, result
        return alive() is not None
    finally:
        gc.enable()
        gc.collect()


def test_the_context_is_freed_when_the_execution_ends() -> None:
    assert not _context_outlives_execution(AcyclicExecution)


def test_graphql_cores_executor_keeps_it_until_a_collection() -> None:
    # What the test above guards against: if this fails, graphql-core no longer makes the
    # cycle and schema.acyclic_executor can go.
    assert _context_outlives_execution(StrawberryGraphQLCoreExecutionContext)


def test_a_helper_kept_past_its_execution_says_it_has_ended() -> None:
    kept: list[Any] = []

    class Keeper(SchemaExtension):
        def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
            kept.append(info.async_helpers)
            return _next(root, info, *args, **kwargs)

    schema = strawberry.Schema(
        query=Query, execution_context_class=AcyclicExecution, extensions=[Keeper]
    )
    result = asyncio.run(schema.execute("{ greeting }", context_value=Context()))
    assert result.data == {"greeting": "hello ann"}
    gc.collect()
    with pytest.raises(RuntimeError, match="has ended"):
        kept[0].track([])
