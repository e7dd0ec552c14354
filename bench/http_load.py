"""A lean HTTP/1.1 keep-alive client for load generation: pre-encoded requests, one in flight
per connection, responses parsed only as far as the status line and Content-Length."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"


class HttpError(Exception):
    """The server answered something this client does not parse (or hung up)."""


def encode_request(
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    host: str = "127.0.0.1",
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """One complete HTTP/1.1 request, ready to write as is."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    if body is None:
        return (head + "\r\n").encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def encode_json_post(path: str, payload: Any, headers: Mapping[str, str] | None = None) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return encode_request("POST", path, body, headers=headers)


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; `request()` sends bytes and returns (status, body)."""

    def __init__(self) -> None:
        self.port = 0
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, host, port)
        protocol.port = port
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment] - uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(HttpError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        end = self._buffer.find(_HEADER_END)
        if end < 0:
            return
        head = bytes(self._buffer[:end]).lower()
        at = head.find(_CONTENT_LENGTH)
        if at < 0:
            waiter.set_exception(HttpError("response without Content-Length"))
            return
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + len(_CONTENT_LENGTH) : line_end if line_end > 0 else None])
        total = end + 4 + length
        if len(self._buffer) < total:
            return
        status = int(head[9:12])
        body = bytes(self._buffer[end + 4 : total])
        del self._buffer[:total]
        waiter.set_result((status, body))

    @property
    def local_port(self) -> int:
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    @property
    def closed(self) -> bool:
        return self._closed

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self._closed or self._transport is None:
            raise HttpError("connection is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def open_connections(host: str, port: int, count: int) -> list[HttpConnection]:
    return list(await asyncio.gather(*(HttpConnection.open(host, port) for _ in range(count))))


def http_op(connection: HttpConnection, raw: bytes, *, graphql: bool) -> Any:
    """A driver operation: send raw, succeed on 200 (and, for GraphQL, no "errors" key)."""

    async def op() -> bool:
        status, body = await connection.request(raw)
        return status == 200 and not (graphql and b'"errors"' in body)

    return op
