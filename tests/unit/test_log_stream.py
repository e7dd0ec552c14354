"""The batched log stream: every line arrives, in order; lines below WARNING within the flush
interval, a WARNING at once with everything before it, all of them when logging shuts down."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from maas.log_stream import PIPE_BUF, BatchedStreamHandler
from tests.support.patience import patience


class _Stream(io.StringIO):
    """A stream that says when something was written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = threading.Event()

    def write(self, text: str) -> int:
        count = super().write(text)
        self.written.set()
        return count


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(f"test.log_stream.{name}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


@pytest.fixture
def stream() -> _Stream:
    return _Stream()


def test_info_lines_wait_for_the_interval_then_arrive_in_order(stream: _Stream) -> None:
    # An interval no machine reaches before the lines are all logged: they can only wait.
    handler = BatchedStreamHandler(stream, flush_seconds=3600)
    log = _logger(handler, "waits")
    for i in range(5):
        log.info("line %d", i)
    assert stream.getvalue() == ""
    handler.flush()
    assert stream.getvalue() == "".join(f"line {i}\n" for i in range(5))
    handler.close()


def test_the_timer_writes_waiting_lines_without_more_logging(stream: _Stream) -> None:
    handler = BatchedStreamHandler(stream, flush_seconds=0.01)
    log = _logger(handler, "timer")
    log.info("alone")
    assert stream.written.wait(patience())
    assert stream.getvalue() == "alone\n"
    handler.close()


def test_a_warning_goes_out_at_once_with_every_line_before_it(stream: _Stream) -> None:
    handler = BatchedStreamHandler(stream, flush_seconds=3600)
    log = _logger(handler, "warning")
    log.info("first")
    log.debug("second")
    log.warning("third")
    assert stream.getvalue() == "first\nsecond\nthird\n"
    handler.close()


def test_a_full_batch_goes_out_at_once(stream: _Stream) -> None:
    handler = BatchedStreamHandler(stream, flush_seconds=3600, max_lines=3)
    log = _logger(handler, "full")
    log.info("a")
    log.info("b")
    assert stream.getvalue() == ""
    log.info("c")
    assert stream.getvalue() == "a\nb\nc\n"
    handler.close()


def test_no_interval_writes_each_line_as_it_comes(stream: _Stream) -> None:
    handler = BatchedStreamHandler(stream, flush_seconds=0)
    log = _logger(handler, "unbatched")
    log.info("now")
    assert stream.getvalue() == "now\n"
    handler.close()


def test_shutting_logging_down_writes_what_waits(stream: _Stream) -> None:
    handler = BatchedStreamHandler(stream, flush_seconds=3600)
    log = _logger(handler, "shutdown")
    log.info("last words")
    logging.shutdown([lambda: handler])  # what the interpreter's exit runs (weak refs)
    assert stream.getvalue() == "last words\n"


def test_a_stream_that_fails_is_reported_not_raised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    handler = BatchedStreamHandler(Broken(), flush_seconds=3600)
    log = _logger(handler, "broken")
    log.info("lost")
    log.error("reported")  # flushes: the write fails, and logging goes on
    assert "disk full" in capsys.readouterr().err
    handler.close()


def test_a_forked_child_flushes_with_a_timer_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "child.log"
    with path.open("w") as out:
        handler = BatchedStreamHandler(out, flush_seconds=0.01)
        log = _logger(handler, "fork")
        log.info("parent")  # the parent's timer starts
        handler.flush()
        pid = os.fork()
        if pid == 0:  # the child: its line must reach the file without a flush of its own
            log.info("child")
            pause = threading.Event()
            for _ in range(int(patience() / 0.01)):
                if "child" in path.read_text():
                    os._exit(0)
                pause.wait(0.01)
            os._exit(1)
        _, status = os.waitpid(pid, 0)
        handler.close()
    assert os.waitstatus_to_exitcode(status) == 0


def test_each_write_is_whole_lines_within_what_a_pipe_writes_whole() -> None:
    writes: list[str] = []

    class Recording(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    handler = BatchedStreamHandler(Recording(), flush_seconds=3600)
    log = _logger(handler, "chunks")
    lines = [f"line {i} " + "é" * (i % 50) for i in range(400)] + ["x" * 5000]
    for line in lines:
        log.info(line)
    handler.flush()
    assert "".join(writes) == "".join(f"{line}\n" for line in lines)
    assert len(writes) > 1
    for text in writes:
        assert text.endswith("\n")
        assert len(text.encode()) <= PIPE_BUF or text.count("\n") == 1  # a long line alone
    handler.close()


def test_a_line_logged_after_closing_is_written_at_once(stream: _Stream) -> None:
    handler = BatchedStreamHandler(stream, flush_seconds=3600)
    log = _logger(handler, "closed")
    log.info("before")
    handler.close()
    log.info("after")  # a logger may still hold a closed handler: no timer flushes it
    assert stream.getvalue() == "before\nafter\n"


def test_lines_from_threads_logging_while_the_timer_flushes_arrive_once_each(
    stream: _Stream,
) -> None:
    handler = BatchedStreamHandler(stream, flush_seconds=0.001, max_lines=7)
    log = _logger(handler, "threads")

    def write(thread: int) -> None:
        for i in range(300):
            log.info("t%d-%d", thread, i)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.close()
    lines = stream.getvalue().splitlines()
    assert sorted(lines) == sorted(f"t{t}-{i}" for t in range(4) for i in range(300))
    for t in range(4):  # each thread's lines in the order it logged them
        mine = [line for line in lines if line.startswith(f"t{t}-")]
        assert mine == [f"t{t}-{i}" for i in range(300)]


# As uvicorn's server leaves a process it shut down on SIGTERM: the handler it found restored,
# the signal raised again.
_DIES_OF_SIGTERM_AS_UVICORN_LEAVES_IT = """
import logging, signal, sys
from maas.log_stream import BatchedStreamHandler
{before}
handler = BatchedStreamHandler(sys.stderr, flush_seconds=3600)
log = logging.getLogger("last")
log.addHandler(handler)
log.setLevel(logging.INFO)
found = signal.signal(signal.SIGTERM, lambda signum, frame: None)
log.info("the last line, logged while shutting down")
signal.signal(signal.SIGTERM, found)
signal.raise_signal(signal.SIGTERM)
print("survived", file=sys.stderr)
"""


def _run(before: str = "") -> subprocess.CompletedProcess[str]:
    program = _DIES_OF_SIGTERM_AS_UVICORN_LEAVES_IT.format(before=before)
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=patience()
    )


def test_a_process_dying_of_sigterm_writes_what_waits_first() -> None:
    died = _run()
    assert "the last line, logged while shutting down" in died.stderr
    assert "survived" not in died.stderr
    assert died.returncode == -signal.SIGTERM  # dies of the signal, as it would have


def test_a_sigterm_handler_the_program_set_is_kept() -> None:
    # maas serve's own (with an embedded Redis) exits through the exit handlers, which flush.
    exits = _run(before="signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))")
    assert "the last line, logged while shutting down" in exits.stderr
    assert exits.returncode == 3
