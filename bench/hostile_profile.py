"""py-spy samples of the server, one file per phase, and what held the GIL in them: a stall
of the event loop is the main thread busy in one function, or another thread holding the GIL
(C code such as json.loads does not let go of it)."""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
from pathlib import Path

RATE = 100  # samples per second
OWN_CODE = ("maas/", "schema/", "resolvers/", "services/", "stores/")
_LINE = re.compile(r":\d+\)$")


class PhaseProfiler:
    """Starts py-spy on `pid` for each phase (`--gil`: only the thread holding the GIL is
    sampled, so idle time is not counted) and summarizes it when the phase stops."""

    def __init__(self, pid: int, directory: Path) -> None:
        executable = shutil.which("py-spy")
        if executable is None:
            raise SystemExit("--profile needs py-spy: `uv pip install py-spy`")
        self.executable = executable
        self.pid = pid
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._process: subprocess.Popen[bytes] | None = None
        self._output: Path | None = None

    def start(self, phase: str) -> None:
        self._output = self.directory / f"phase-{phase}.txt"
        command = [
            self.executable, "record", "--pid", str(self.pid), "--rate", str(RATE),
            "--format", "raw", "--threads", "--gil", "--output", str(self._output),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stop(self) -> list[str]:
        """Stops sampling; a few lines on where the GIL was held."""
        process, output = self._process, self._output
        if process is None or output is None:
            return []
        process.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._process = None
        if not output.exists():
            return [f"(py-spy wrote no samples to {output})"]
        return summarize(output.read_text())


def summarize(raw: str, top: int = 8) -> list[str]:
    """Samples by thread, then the functions that held the GIL most (the innermost frame,
    and the innermost frame of this project's code above it)."""
    threads: collections.Counter[str] = collections.Counter()
    hot: collections.Counter[tuple[str, str]] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        _, _, frames_text = stack.partition(": ")
        thread, *frames = frames_text.split(";")
        frames = [_LINE.sub(")", frame) for frame in frames]
        total += count
        threads["event loop" if thread == "MainThread" else "worker threads"] += count
        if not frames:
            continue
        own = next((f for f in reversed(frames) if any(p in f for p in OWN_CODE)), "-")
        hot[frames[-1], own] += count
    if not total:
        return ["(no samples)"]
    seconds = total / RATE
    split = ", ".join(f"{name} {n / RATE:.1f} s" for name, n in threads.most_common())
    lines = [f"GIL held {seconds:.1f} s ({split}); innermost function <- our code above it:"]
    for (leaf, own), count in hot.most_common(top):
        lines.append(f"  {count / total:5.1%}  {leaf}  <-  {own}")
    return lines
