"""The log stream, written a batch of lines at a time.

With an access line per request, `maas serve` spent about a sixth of a write's server CPU on
logging at INFO (607 against 509 µs per write at WARNING, same run), a write to stderr per
line among it; written in batches, 603 → 555 µs (8 paired rounds; the rest is making and
formatting each record). Here lines wait in memory and go out together: within `flush_seconds` (a
timer thread), at once when a record at WARNING or above comes (with every line before it,
in order), when `max_lines` are waiting, when logging shuts down (at the process's normal
exit), and before the process dies of SIGTERM. A process killed outright loses at most
`flush_seconds` of lines below WARNING. `flush_seconds` = 0 writes each line as it comes, as
logging's StreamHandler.

Why SIGTERM needs its own step: uvicorn's server catches SIGTERM, shuts down, restores the
handler it found and raises the signal again. With the default handler the process dies there,
without exit handlers, so nothing would write the lines of its last `flush_seconds` (the
shutdown's own among them). Where SIGTERM has the default handler, the first handler made in
the main thread installs one that writes what waits and then dies of the signal as before.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
import weakref
from collections.abc import Iterator
from typing import TextIO

_handlers: weakref.WeakSet[BatchedStreamHandler] = weakref.WeakSet()
# What POSIX guarantees a pipe writes whole (Linux: 4096 bytes).
PIPE_BUF = 4096


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def __init__(
        self, stream: TextIO | None = None, flush_seconds: float = 0.2, max_lines: int = 512
    ) -> None:
        super().__init__(stream)
        self.flush_seconds = flush_seconds
        self.max_lines = max_lines
        # Each line written as it comes: without an interval, and once closed (no timer).
        self._at_once = flush_seconds <= 0
        self._waiting: list[str] = []
        # Whether this process's timer thread runs (a forked child has none: it starts its
        # own). Not os.getpid() per line: glibc makes it a system call each time.
        self._timing = False
        self._timer_stop = threading.Event()
        _handlers.add(self)
        _write_waiting_lines_before_sigterm()

    def emit(self, record: logging.LogRecord) -> None:
        # Called with the handler's lock held (Handler.handle), as flush takes it too.
        try:
            self._waiting.append(self.format(record) + self.terminator)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        if (
            record.levelno >= logging.WARNING
            or len(self._waiting) >= self.max_lines
            or self._at_once
        ):
            self.flush()
        elif not self._timing:
            self._start_timer()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            waiting, self._waiting = self._waiting, []
            try:
                for chunk in _chunks(waiting):
                    self.stream.write(chunk)
                    self.stream.flush()
            except Exception:
                # As Handler.handleError reports a record it cannot write.
                if logging.raiseExceptions:
                    traceback.print_exc(file=sys.stderr)
            super().flush()

    def close(self) -> None:
        self._at_once = True
        self._timer_stop.set()
        try:
            self.flush()
        finally:
            super().close()

    def _start_timer(self) -> None:
        self._timing = True
        threading.Thread(target=self._flush_every, name="log-flush", daemon=True).start()

    def _flush_every(self) -> None:
        while not self._timer_stop.wait(self.flush_seconds):
            self.flush()


def _chunks(lines: list[str]) -> Iterator[str]:
    """The lines joined into writes of at most PIPE_BUF bytes (a line longer goes alone). The
    workers of `maas serve --workers N` share one stderr: a write to a pipe is never mixed
    with another process's up to PIPE_BUF bytes, so lines stay whole, as one per write kept
    them."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        length = len(line) if line.isascii() else len(line.encode())
        if chunk and size + length > PIPE_BUF:
            yield "".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += length
    if chunk:
        yield "".join(chunk)


def _write_waiting_lines_before_sigterm() -> None:
    # Only the main thread may set a handler; one set by the program (maas serve's own, which
    # exits through the exit handlers) is kept.
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _write_waiting_then_die)


def _write_waiting_then_die(signum: int, frame: object) -> None:
    for handler in list(_handlers):
        handler.flush()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def _after_fork_in_child() -> None:
    # The parent's timer threads did not come along.
    for handler in list(_handlers):
        handler._timing = False


os.register_at_fork(after_in_child=_after_fork_in_child)
