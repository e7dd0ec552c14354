"""Completion plans answer exactly what graphql-core's own completion answers: the same data, and
for anything unexpected the same errors at the same paths (graphql-core completes it)."""

from __future__ import annotations

import enum
import gc
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.scalars import JSON
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.completion_plans import CompletionPlans, GiveUp, PlannedCompletion, answered_by


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class OtherColor(enum.Enum):
    RED = "red"


@strawberry.type
class Leaf:
    id: str
    count: int
    ratio: float
    color: Color
    at: datetime
    data: JSON
    note: str | None


@strawberry.type
class Branch:
    name: str
    leaves: list[Leaf]
    maybe: list[Leaf | None] | None
    first: Leaf | None

    @strawberry.field
    def computed(self, times: int = 1) -> str:
        return self.name * times


@strawberry.type
class Imposter:
    id: str


@dataclass
class StoredLeaf:
    """What a service might hold: the fields of Leaf as attributes, declared to answer for it."""

    id: str
    count: int
    ratio: float
    color: Color
    at: datetime
    data: Any
    note: str | None


@dataclass
class LookalikeLeaf(StoredLeaf):
    """The same attributes, not declared: the general way completes it."""


answered_by(Leaf, StoredLeaf)


def stored(n: int, kind: type[StoredLeaf] = StoredLeaf, **changes: Any) -> Any:
    return kind(**{**vars(leaf(n)), **changes})


def leaf(n: int, **changes: Any) -> Leaf:
    values: dict[str, Any] = {
        "id": f"l{n}",
        "count": n,
        "ratio": n / 3,
        "color": Color.BLUE if n % 2 else Color.RED,
        "at": datetime(2026, 1, 2, 3, 4, n, tzinfo=UTC),
        "data": {"n": n, "list": [1, "x", None]},
        "note": None if n % 2 else f"note {n}",
    }
    values.update(changes)
    return Leaf(**values)


def branch(**changes: Any) -> Branch:
    values: dict[str, Any] = {
        "name": "b",
        "leaves": [leaf(n) for n in range(5)],
        "maybe": [leaf(7), None],
        "first": leaf(9),
    }
    values.update(changes)
    return Branch(**values)


BROKEN = {
    "null in a non-null leaf": branch(leaves=[leaf(1), leaf(2, id=None)]),
    "int where a string belongs": branch(leaves=[leaf(1, count="three")]),
    "not an enum member": branch(leaves=[leaf(1, color="red")]),
    "another type's object": branch(first=Imposter(id="x")),
    "a string where a list belongs": branch(leaves="abc"),
    "null list": branch(leaves=None),
    "NaN float": branch(leaves=[leaf(1, ratio=float("nan"))]),
    "int beyond 32 bits": branch(leaves=[leaf(1, count=2**31)]),
    "bool where an int belongs": branch(leaves=[leaf(1, count=True)]),
    "int where an id belongs": branch(leaves=[leaf(1, id=5)]),
    "another enum's member": branch(leaves=[leaf(1, color=OtherColor.RED)]),
    "a declared class's broken object": branch(leaves=[stored(1), stored(2, id=None)]),
}
ANSWERED = {
    "objects of a declared class": branch(leaves=[stored(n) for n in range(3)], first=stored(9)),
    "an undeclared lookalike": branch(leaves=[stored(1, LookalikeLeaf)]),
}


@strawberry.type
class Query:
    @strawberry.field
    def branch(self, info: strawberry.Info) -> Branch:
        return info.context["value"]

    @strawberry.field
    async def later(self, info: strawberry.Info) -> Branch:
        return info.context["value"]

    @strawberry.field
    def branches(self, info: strawberry.Info) -> list[Branch]:
        return [info.context["value"]] * 2


def planned_schema(**kwargs: Any) -> tuple[strawberry.Schema, CompletionPlans]:
    plans = CompletionPlans()
    executor = type(
        "Planned", (PlannedCompletion, StrawberryGraphQLCoreExecutionContext), {"plans": plans}
    )
    return strawberry.Schema(query=Query, execution_context_class=executor, **kwargs), plans


PLANNED, _ = planned_schema()
GENERAL = strawberry.Schema(query=Query)


QUERIES = {
    "plain": "{ branch { name leaves { id count ratio color at data note } } }",
    "async root": "{ later { leaves { id color } first { id } } }",
    "nullable list items": "{ branch { maybe { id note } first { __typename id } } }",
    "aliases and typename": "{ b: branch { __typename n: name l: leaves { i: id id c: color } } }",
    "fragments": (
        "query { branch { ...B leaves { ... on Leaf { id } ...L } } } "
        "fragment B on Branch { name first { ...L } } fragment L on Leaf { count at }"
    ),
    "merged fields": "{ branch { leaves { id } leaves { count } } }",
    "resolver inside": "{ branch { computed(times: 2) leaves { id } } }",
    "list of objects": "{ branches { name leaves { id } } }",
    "directives": (
        "query($no: Boolean = false) { branch { leaves { id count @include(if: $no) "
        "... @skip(if: $no) { color } } } }"
    ),
}


def outcome(result: Any) -> tuple[Any, Any]:
    errors = [(e.message, e.path, e.locations) for e in result.errors or []]
    return result.data, errors


@pytest.mark.parametrize("query", QUERIES.values(), ids=QUERIES.keys())
@pytest.mark.parametrize(
    "value",
    [branch(), *ANSWERED.values(), *BROKEN.values()],
    ids=["good", *ANSWERED.keys(), *BROKEN.keys()],
)
async def test_planned_results_and_errors_are_graphql_cores(query: str, value: Branch) -> None:
    context = {"value": value}
    for _ in range(2):  # compiled on the first, reused on the second
        planned = await PLANNED.execute(query, context_value=context)
        assert outcome(planned) == outcome(await GENERAL.execute(query, context_value=context))


async def test_plain_selections_get_a_plan_and_directives_do_not() -> None:
    context = {"value": branch()}
    schema, plans = planned_schema()
    await schema.execute(QUERIES["plain"], context_value=context)
    assert [plan is not None for _, plan in plans._entries.values()] == [True]
    schema, plans = planned_schema()
    await schema.execute(QUERIES["directives"], context_value=context)
    assert plans._entries
    assert all(plan is None for _, plan in plans._entries.values())


async def test_a_plan_completes_a_declared_class_and_gives_up_on_any_other() -> None:
    schema, plans = planned_schema()
    await schema.execute(QUERIES["plain"], context_value={"value": branch()})
    [(_, plan)] = plans._entries.values()
    completed = plan(ANSWERED["objects of a declared class"])
    assert [leaf["id"] for leaf in completed["leaves"]] == ["l0", "l1", "l2"]
    with pytest.raises(GiveUp):
        plan(ANSWERED["an undeclared lookalike"])


async def test_plans_hold_no_document_alive_and_stay_bounded() -> None:
    schema, plans = planned_schema()
    plans.max_entries = 3
    for n in range(10):
        query = f"query Q{n} {{ branch {{ leaves {{ id }} }} }}"
        result = await schema.execute(query, context_value={"value": branch()})
        assert result.errors is None
    assert len(plans) == 3
    gc.collect()
    assert all(ref() is None for refs, _ in plans._entries.values() for ref in refs)


async def test_resolve_middleware_turns_plans_off() -> None:
    seen: list[str] = []

    class EveryField(strawberry.extensions.SchemaExtension):
        def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append(info.field_name)
            return _next(root, info, *args, **kwargs)

    schema, plans = planned_schema(extensions=[EveryField])
    result = await schema.execute("{ branch { leaves { id } } }", context_value={"value": branch()})
    assert result.errors is None
    assert seen.count("id") == 5
    assert len(plans) == 0
