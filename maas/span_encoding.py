"""Finished spans as an OTLP ExportTraceServiceRequest, in protobuf bytes, written directly.

The SDK's encoder (opentelemetry-exporter-otlp-proto-common) builds a protobuf object for every
span, attribute and value before serializing them: ~25 us per span, more than it costs to make
the span. This writes the same bytes (tests/unit/test_span_encoding.py compares the two,
message for message) at a fraction of that, caching what repeats from span to span: the
resource, each instrumentation scope, attribute keys and constant attributes.

Wire format: https://protobuf.dev/programming-guides/encoding/ over opentelemetry-proto's
trace/v1, common/v1 and resource/v1 messages (field numbers in the comments below).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, StatusCode

log = logging.getLogger(__name__)

_VARINT_1 = [bytes([i]) for i in range(128)]
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MASK64 = 2**64 - 1
# Bounded: keys and constant attributes are few, but nothing stops a library from making more.
_CACHE_LIMIT = 4096
# Span.flags: the SDK always says whether the parent was remote (SPAN_FLAGS_CONTEXT_*).
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200
_FLAGS_LOCAL = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE)  # field 16, fixed32
_FLAGS_REMOTE = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE)
_STATUS_UNSET = b"\x7a\x00"  # field 15, an empty Status (the SDK sends one on every span)
# trace_id 1 and span_id 2 (fields 1 and 2, 16 and 8 bytes, big-endian: ids as the spec writes
# them), in one step.
_IDS = struct.Struct(">BB16sBBQ").pack
# kind 6: proto's SpanKind is the API's + 1.
_KIND = {kind: b"\x30" + _VARINT_1[kind.value + 1] for kind in SpanKind}
# start_time_unix_nano 7 and end_time_unix_nano 8 (fixed64).
_TIMES = struct.Struct("<BQBQ").pack


def varint(n: int) -> bytes:
    if 0 <= n < 0x80:
        return _VARINT_1[n]
    n &= _MASK64
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + varint(len(payload)) + payload


def _text(tag: bytes, value: str) -> bytes:
    return _field(tag, value.encode("utf-8", "surrogatepass"))


def _any_value(value: Any) -> bytes:
    """AnyValue: string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7."""
    kind = type(value)
    if kind is str:
        return _text(b"\x0a", value)
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"{value} is out of the int64 range")
        return b"\x18" + varint(value)
    if kind is float:
        return b"\x21" + _DOUBLE(value)
    if value is None:
        return b""
    # Subclasses (enums, str and int subclasses) and containers, as the SDK's encoder takes them.
    if isinstance(value, bool):
        return _any_value(bool(value))
    if isinstance(value, str):
        return _any_value(str(value))
    if isinstance(value, int):
        return _any_value(int(value))
    if isinstance(value, float):
        return _any_value(float(value))
    if isinstance(value, bytes):
        return _field(b"\x3a", bytes(value))
    if isinstance(value, Sequence):
        # ArrayValue: values 1
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        # KeyValueList: values 1
        pairs = (_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items())
        return _field(b"\x32", b"".join(pairs))
    raise TypeError(f"cannot encode a {type(value).__name__} attribute")


def _key_value(key: str, value: Any) -> bytes:
    """KeyValue: key 1, value 2."""
    return _text(b"\x0a", key) + _field(b"\x12", _any_value(value))


class SpanEncoder:
    """Encodes batches of finished spans; keeps its caches from batch to batch (one exporter,
    one encoder, used by the exporting thread only)."""

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}
        self._names: dict[str, bytes] = {}  # span names, as their field
        self._constants: dict[tuple[str, type, Any], bytes] = {}
        # By identity, holding the object so that its id cannot be reused while cached.
        self._resources: dict[int, tuple[Resource, bytes]] = {}
        self._scopes: dict[int, tuple[InstrumentationScope | None, bytes]] = {}
        self._reported: set[str] = set()

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """An ExportTraceServiceRequest (resource_spans 1) holding `spans`, grouped by resource
        and instrumentation scope as the SDK groups them."""
        # By identity: a Resource hashes by dumping its attributes to JSON, every time.
        groups: dict[int, tuple[Resource, dict[int, tuple[Any, list[bytes]]]]] = {}
        for span in spans:
            resource = span.resource
            group = groups.get(id(resource))
            if group is None:
                group = groups[id(resource)] = (resource, {})
            scope = span.instrumentation_scope or None
            encoded = group[1].get(id(scope))
            if encoded is None:
                encoded = group[1][id(scope)] = (scope, [])
            encoded[1].append(self._span(span))
        resource_spans = []
        for resource, scopes in groups.values():
            # ResourceSpans: resource 1, scope_spans 2, schema_url 3
            parts = [self._resource(resource)]
            for scope, encoded_spans in scopes.values():
                # ScopeSpans: scope 1, spans 2, schema_url 3
                scope_parts = [self._scope(scope)]
                scope_parts.extend(_field(b"\x12", span) for span in encoded_spans)
                if scope is not None and scope.schema_url:
                    scope_parts.append(_text(b"\x1a", scope.schema_url))
                parts.append(_field(b"\x12", b"".join(scope_parts)))
            if resource.schema_url:
                parts.append(_text(b"\x1a", resource.schema_url))
            resource_spans.append(_field(b"\x0a", b"".join(parts)))
        return b"".join(resource_spans)

    def _span(self, span: ReadableSpan) -> bytes:
        """Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6,
        start 7, end 8, attributes 9, dropped_attributes_count 10, events 11,
        dropped_events_count 12, links 13, dropped_links_count 14, status 15, flags 16."""
        context = span.context
        parent = span.parent
        # The SDK's own fields where it has them: its properties copy them for every read.
        attributes = getattr(span, "_attributes", None)
        if attributes is None:
            attributes = span.attributes
        events = getattr(span, "_events", None)
        if events is None:
            events = span.events
        links = getattr(span, "_links", None)
        if links is None:
            links = span.links
        parts = [_IDS(0x0A, 0x10, context.trace_id.to_bytes(16), 0x12, 0x08, context.span_id)]
        if context.trace_state:
            parts.append(_text(b"\x1a", _trace_state(context.trace_state)))
        if parent is not None:
            parts.append(b"\x22\x08" + parent.span_id.to_bytes(8))
        name = span.name
        encoded_name = self._names.get(name)
        if encoded_name is None:
            encoded_name = _text(b"\x2a", name)
            if len(self._names) < _CACHE_LIMIT:
                self._names[name] = encoded_name
        parts.append(encoded_name)
        parts.append(_KIND[span.kind])
        parts.append(_TIMES(0x39, span.start_time or 0, 0x41, span.end_time or 0))
        if attributes:
            parts.extend(self._attributes(b"\x4a", attributes))
        if span.dropped_attributes:
            parts.append(b"\x50" + varint(span.dropped_attributes))
        for event in events or ():
            # Event: time_unix_nano 1, name 2, attributes 3, dropped_attributes_count 4
            event_parts = [b"\x09" + _FIXED64(event.timestamp or 0), _text(b"\x12", event.name)]
            if event.attributes:
                event_parts.extend(self._attributes(b"\x1a", event.attributes))
            if event.dropped_attributes:
                event_parts.append(b"\x20" + varint(event.dropped_attributes))
            parts.append(_field(b"\x5a", b"".join(event_parts)))
        if events and span.dropped_events:
            parts.append(b"\x60" + varint(span.dropped_events))
        for link in links or ():
            # Link: trace_id 1, span_id 2, trace_state 3, attributes 4,
            # dropped_attributes_count 5, flags 6 (as the SDK: no trace_state)
            link_parts = [
                b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big"),
                b"\x12\x08" + link.context.span_id.to_bytes(8, "big"),
            ]
            if link.attributes:
                link_parts.extend(self._attributes(b"\x22", link.attributes))
            if link.dropped_attributes:
                link_parts.append(b"\x28" + varint(link.dropped_attributes))
            flags = _HAS_IS_REMOTE | (_IS_REMOTE if link.context.is_remote else 0)
            link_parts.append(b"\x35" + _FIXED32(flags))
            parts.append(_field(b"\x6a", b"".join(link_parts)))
        if links and span.dropped_links:
            parts.append(b"\x70" + varint(span.dropped_links))
        status = span.status
        if status.status_code is not StatusCode.UNSET or status.description:
            # Status: message 2, code 3
            status_parts = [_text(b"\x12", status.description)] if status.description else []
            if status.status_code.value:
                status_parts.append(b"\x18" + _VARINT_1[status.status_code.value])
            parts.append(_field(b"\x7a", b"".join(status_parts)))
        else:
            parts.append(_STATUS_UNSET)
        parts.append(_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
        return b"".join(parts)

    def _attributes(self, tag: bytes, attributes: Mapping[str, Any]) -> list[bytes]:
        """Each attribute as a KeyValue field under `tag`; one that cannot be encoded is left
        out and logged, as the SDK's encoder does."""
        keys, constants = self._keys, self._constants
        out = []
        for key, value in attributes.items():
            kind = type(value)
            constant = (
                kind is bool
                or (kind is str and len(value) <= 64)
                or (kind is int and 0 <= value < 1024)
            )
            if constant:
                cached = constants.get((key, kind, value))
                if cached is not None:
                    out.append(cached)
                    continue
            try:
                encoded_key = keys.get(key)
                if encoded_key is None:
                    encoded_key = _text(b"\x0a", key)
                    if len(keys) < _CACHE_LIMIT:
                        keys[key] = encoded_key
                field = _field(tag, encoded_key + _field(b"\x12", _any_value(value)))
            except (TypeError, ValueError, OverflowError) as error:
                if key not in self._reported and len(self._reported) < _CACHE_LIMIT:
                    self._reported.add(key)
                    log.warning("span attribute %s left out of exports: %s", key, error)
                continue
            if constant and len(constants) < _CACHE_LIMIT:
                constants[(key, kind, value)] = field
            out.append(field)
        return out

    def _resource(self, resource: Resource) -> bytes:
        cached = self._resources.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        # Resource: attributes 1
        encoded = _field(b"\x0a", b"".join(self._attributes(b"\x0a", resource.attributes)))
        if len(self._resources) < _CACHE_LIMIT:
            self._resources[id(resource)] = (resource, encoded)
        return encoded

    def _scope(self, scope: InstrumentationScope | None) -> bytes:
        cached = self._scopes.get(id(scope))
        if cached is not None and cached[0] is scope:
            return cached[1]
        # InstrumentationScope: name 1, version 2, attributes 3
        parts = []
        if scope is not None:
            if scope.name:
                parts.append(_text(b"\x0a", scope.name))
            if scope.version:
                parts.append(_text(b"\x12", scope.version))
            if scope.attributes:
                parts.extend(self._attributes(b"\x1a", scope.attributes))
        encoded = _field(b"\x0a", b"".join(parts))
        if len(self._scopes) < _CACHE_LIMIT:
            self._scopes[id(scope)] = (scope, encoded)
        return encoded


def _trace_state(trace_state: Any) -> str:
    return ",".join(f"{key}={value}" for key, value in trace_state.items())
