"""An executor that leaves no reference cycle behind.

graphql-core's executor keeps the helpers it hands resolvers (`info.async_helpers`) as bound
methods of itself: a cycle through every executor, which held the request's context, its
Starlette request and everything they hold (about fifty objects per request) until the garbage
collector's next pass. Here the helpers reach the executor weakly, so reference counting frees
a request's objects as soon as it ends, in memory the next request reuses while still cached.
An executor is alive while its execution runs (its own frames hold it); a helper called after
it was freed says so.
"""

from __future__ import annotations

import weakref
from typing import Any

from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class AcyclicExecution(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = self._async_helpers()

    def _async_helpers(self) -> GraphQLResolveInfoHelpers:
        executor = weakref.ref(self)

        def gather(*args: Any, **kwargs: Any) -> Any:
            return _alive(executor).gather_async_work(*args, **kwargs)

        def track(*args: Any, **kwargs: Any) -> Any:
            return _alive(executor).track_async_work(*args, **kwargs)

        return GraphQLResolveInfoHelpers(gather=gather, track=track)


def _alive(executor: weakref.ref[AcyclicExecution]) -> AcyclicExecution:
    alive = executor()
    if alive is None:
        raise RuntimeError("The GraphQL execution this belongs to has ended.")
    return alive
