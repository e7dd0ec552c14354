"""One request as an attacker sends it: its own connection, the body streamed in chunks while
the reply is read (a server may answer before it has read the body, and then stop reading),
and what came back: the status and the first error's code, or how the connection ended."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Reply:
    """How one request was answered, and how long after its first byte was sent."""

    status: int | None  # None: no HTTP reply (closed, reset, timed out)
    code: str | None  # the first error's extensions.code; None when the reply had no errors
    seconds: float
    failure: str | None = None  # why there was no reply

    @property
    def outcome(self) -> str:
        """A label to count replies by: "413 LIMIT_EXCEEDED", "200 ok", "timeout"..."""
        if self.status is None:
            return self.failure or "no reply"
        return f"{self.status} {self.code or 'ok'}"


def chunks(body: bytes, size: int = CHUNK_BYTES) -> Iterable[bytes]:
    """body in pieces of `size` bytes (without copying it)."""
    view = memoryview(body)
    return (view[at : at + size] for at in range(0, len(body), size))


def chunked_encoding(pieces: Iterable[bytes]) -> Iterable[bytes]:
    """pieces framed as an HTTP/1.1 chunked body (Transfer-Encoding: chunked)."""
    for piece in pieces:
        yield f"{len(piece):x}\r\n".encode() + bytes(piece) + b"\r\n"
    yield b"0\r\n\r\n"


async def send(
    host: str, port: int, head: bytes, body: Iterable[bytes], *, timeout_s: float
) -> Reply:
    """Sends head, then body piece by piece, on a new connection; returns the reply."""
    began = time.perf_counter()

    def failed(why: str) -> Reply:
        return Reply(None, None, time.perf_counter() - began, why)

    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=2**20), timeout_s
        )
    except (OSError, TimeoutError) as error:
        return failed(f"connect: {type(error).__name__}")

    async def write() -> None:
        writer.write(head)
        for piece in body:
            writer.write(piece)
            await writer.drain()
        await writer.drain()

    writing = asyncio.create_task(write())
    try:
        status, reply_body = await asyncio.wait_for(_read_reply(reader), timeout_s)
    except TimeoutError:
        return failed("timeout")
    except (asyncio.IncompleteReadError, ConnectionError) as error:
        # A server that answers and closes before it has read the whole body makes the
        # client's kernel see a reset, which may discard the answer before it is read.
        return failed(f"no reply ({type(error).__name__})")
    finally:
        writing.cancel()
        with contextlib.suppress(BaseException):
            await writing
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return Reply(status, _error_code(reply_body), time.perf_counter() - began)


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    }
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
        return status, b"".join(parts)
    return status, await reader.read()


def _error_code(body: bytes) -> str | None:
    try:
        reply = json.loads(body)
    except ValueError:
        return "not JSON"
    errors = reply.get("errors") if isinstance(reply, dict) else None
    if not errors:
        return None
    return str((errors[0].get("extensions") or {}).get("code") or "no code")
