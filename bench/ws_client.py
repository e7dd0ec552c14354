"""A lean WebSocket client for fan-out load: one asyncio Protocol per connection, frames parsed
in `data_received` and time-stamped there.

A subscriber built on the `websockets` library cost the load generator ~75 ms of CPU to receive
one event on 1,000 subscribers, queued in front of the last arrivals: the size of the latency
being measured. This one costs ~25 ms (most of it the kernel's receive and the JSON parse), and
time-stamps a frame as soon as the event loop reads it.
Server frames are unmasked and, from uvicorn, never fragmented; client frames are masked.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable

_HEADER_END = b"\r\n\r\n"
_TEXT, _CLOSE, _PING, _PONG = 0x1, 0x8, 0x9, 0xA

# (arrival time from time.perf_counter(), the frame's text payload)
OnMessage = Callable[[float, bytes], None]


class WsError(Exception):
    """The server did not upgrade, closed the socket, or sent what this client does not read."""


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    repeated = (mask * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        length, "big"
    )
    return head + mask + masked


class WsConnection(asyncio.Protocol):
    """One client WebSocket; text messages go to `on_message` once `open()` has returned."""

    def __init__(self, path: str, host: str, subprotocol: str) -> None:
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
        ).encode()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._upgraded = False
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._first: asyncio.Future[bytes] | None = None
        self.on_message: OnMessage | None = None
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int, path: str, subprotocol: str) -> WsConnection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            lambda: cls(path, f"{host}:{port}", subprotocol), host, port
        )
        await connection._opened
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment] - uvloop's is not a subclass
        self._transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for waiter in (self._opened, self._first):
            if waiter is not None and not waiter.done():
                waiter.set_exception(WsError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        at = time.perf_counter()
        self._buffer += data
        if not self._upgraded:
            end = self._buffer.find(_HEADER_END)
            if end < 0:
                return
            status = bytes(self._buffer[:12])
            del self._buffer[: end + 4]
            if not status.endswith(b" 101"):
                self._opened.set_exception(WsError(f"no upgrade: {status!r}"))
                return
            self._upgraded = True
            self._opened.set_result(None)
        self._read_frames(at)

    def _read_frames(self, at: float) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            length, start = second & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = struct.unpack_from("!H", buffer, 2)[0], 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = struct.unpack_from("!Q", buffer, 2)[0], 10
            if second & 0x80 or not first & 0x80:
                raise WsError("masked or fragmented server frame")
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            self._frame(first & 0x0F, payload, at)

    def _frame(self, opcode: int, payload: bytes, at: float) -> None:
        if opcode == _TEXT:
            if self._first is not None and not self._first.done():
                self._first.set_result(payload)
            elif self.on_message is not None:
                self.on_message(at, payload)
        elif opcode == _PING:
            self._send(_PONG, payload)
        elif opcode == _CLOSE:
            self.close()

    def _send(self, opcode: int, payload: bytes) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(_masked_frame(opcode, payload))

    def send_text(self, text: str) -> None:
        self._send(_TEXT, text.encode())

    async def exchange(self, text: str) -> bytes:
        """Send text and return the next text message (before `on_message` is set)."""
        self._first = asyncio.get_running_loop().create_future()
        self.send_text(text)
        return await self._first

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._send(_CLOSE, struct.pack("!H", 1000))
            self._transport.close()
        self.closed = True
