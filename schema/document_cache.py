"""The request's document: parsed within the token limit, its operation checked
(schema.operation_choice), validated with the schema's limit rules, and cached by its text,
bounded in bytes as well as entries.

Two steps do all of it, `parse` and `validate`: queries and mutations call them directly
(schema.lean_operation), Strawberry's own execution (subscriptions) as the hooks of
`extension()`. Strawberry's MaxTokensLimiter and AddValidationRules (DisableIntrospection
among them) would each cost every operation hooks of their own to set the same parse option
and rules; here they are set on the way into parsing and validation, where Strawberry's own
parse and validation (of documents too large to cache) read them too.

Strawberry's ParserCache and ValidationCache bound only the number of entries, keyed by the
whole document: 256 distinct documents of a couple of megabytes each (sent without even an API
key) would hold gigabytes. Here only documents up to `max_chars` are cached (what clients send
again and again is small); larger ones are parsed and validated each time, and the space the
cache can hold is at most `max_entries * max_chars` of text plus its syntax trees. A document
that does not parse is never cached: Strawberry parses it again and reports the error as it
does for every request (ParserCache raised it from its hook, which a subscription did not
report)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from graphql import ASTValidationRule, GraphQLError, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from schema.operation_choice import operation_problem

if TYPE_CHECKING:
    from strawberry.types import ExecutionContext


class _Lru:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str) -> Any:
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    def put(self, key: str, value: Any) -> None:
        self.entries[key] = value
        if len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)


class DocumentCache:
    """The limits and caches of one schema; `extension()` is the factory to give the schema.
    `max_tokens` bounds what the parser reads (None: unbounded); `rules` are validated beside
    graphql-core's own."""

    def __init__(
        self,
        max_entries: int = 256,
        max_chars: int = 8192,
        max_tokens: int | None = None,
        rules: Sequence[type[ASTValidationRule]] = (),
    ) -> None:
        self.max_chars = max_chars
        self.max_tokens = max_tokens
        self.rules = tuple(rules)
        self.documents = _Lru(max_entries)
        self.validations = _Lru(max_entries)

    def extension(self) -> SchemaExtension:
        return _CachingExtension(self)

    def parse(self, context: ExecutionContext) -> None:
        """The parse phase's step: the token limit set, the document taken from the cache (or
        parsed and cached); one that does not parse is left for Strawberry to parse and
        report."""
        if self.max_tokens is not None:
            context.parse_options["max_tokens"] = self.max_tokens
        query = self._cacheable(context)
        if query is not None and context.graphql_document is None:
            document = self.documents.get(query)
            if document is None:
                try:
                    document = parse(query, **context.parse_options)
                except GraphQLError:
                    document = None
                else:
                    self.documents.put(query, document)
            context.graphql_document = document

    def validate(self, context: ExecutionContext) -> None:
        """The validation phase's step: the operation choice checked, the limit rules added,
        a cached document's validation errors set (taken from the cache, or found and
        cached); an uncached one is left for Strawberry to validate with the same rules."""
        problem = operation_problem(context)
        if problem is not None:  # refused before validation (Strawberry's then skips too)
            context.pre_execution_errors = [GraphQLError(problem)]
        context.validation_rules = context.validation_rules + self.rules
        query = self._cacheable(context)
        if query is not None and context.pre_execution_errors is None:
            errors = self.validations.get(query)
            if errors is None:
                assert context.graphql_document is not None
                errors = validate_document(
                    context.schema._schema, context.graphql_document, context.validation_rules
                )
                self.validations.put(query, errors)
            context.pre_execution_errors = list(errors)

    def _cacheable(self, context: ExecutionContext) -> str | None:
        query = context.query
        return query if query and len(query) <= self.max_chars else None


class _CachingExtension(SchemaExtension):
    """The cache's steps as the parse and validation hooks of Strawberry's own execution."""

    def __init__(self, cache: DocumentCache) -> None:
        super().__init__()
        self.cache = cache

    def on_parse(self) -> Iterator[None]:
        self.cache.parse(self.execution_context)
        yield

    def on_validate(self) -> Iterator[None]:
        self.cache.validate(self.execution_context)
        yield
