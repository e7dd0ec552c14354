"""Instructions per request: GraphQL against the plain JSON route, counted by callgrind.

    uv run python -m bench.instructions_bench [--baseline DIR] [--requests N]

Server CPU per request on a shared 2-core machine moves by a fifth from one round to the next
(see bench.api_sections), so a change of a few percent in what GraphQL costs cannot be read off
it. The instructions a request executes can: the same code gives the same count to within a
few tenths of a percent. The whole app (middleware, view, schema, service, Redis client)
answers each request in this process, called as uvicorn calls it (ASGI), against a real
redis-server; valgrind's callgrind counts the instructions of N requests of each case after a
warm-up, and the script prints them per request, side by side with a baseline checkout's
(`git archive <rev> | tar -x -C DIR`, run on this environment's dependencies).

Instructions are not time: the interpreter runs GraphQL's Python at fewer instructions per
cycle than the C the plain route spends much of its time in (JSON, the Redis reply parser), so
the server CPU ratio is higher than the instruction ratio (about 1.39 against 1.55-1.65 for a
write, measured the same day). They say whether a change made GraphQL's work smaller.

Needs valgrind and a C compiler (Debian: `apt install valgrind gcc`); without them it says so
and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.api_sections import gql_context, gql_write, plain_context, plain_write

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "write, GraphQL addMessages": ("gw", gql_write),
    "write, plain POST": ("pw", plain_write),
    "context (50 of 100), GraphQL": ("gc", gql_context),
    "context (50 of 100), plain GET": ("pc", plain_context),
}
WARMUP = 30
# The client requests callgrind reads (valgrind/callgrind.h), callable through ctypes.
_CONTROL_SOURCE = """
#include <valgrind/callgrind.h>
void start(void) { CALLGRIND_START_INSTRUMENTATION; }
void stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void zero(void) { CALLGRIND_ZERO_STATS; }
void dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="another checkout's files, side by side")
    parser.add_argument("--requests", type=int, default=40, help="requests counted per case")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # control library, N
    args = parser.parse_args(argv)
    if args.baseline is not None and not (args.baseline / "bench" / "server.py").is_file():
        parser.error(f"--baseline {args.baseline}: not a checkout (no bench/server.py)")
    if args.child:
        asyncio.run(_count(Path(args.child[0]), int(args.child[1])))
        return 0
    missing = [tool for tool in ("valgrind", "cc") if shutil.which(tool) is None]
    if missing:
        print(f"instructions_bench: needs {' and '.join(missing)} (apt install valgrind gcc)")
        return 1
    with tempfile.TemporaryDirectory(prefix="maas-callgrind-") as work:
        control = Path(work) / "control.so"
        source = Path(work) / "control.c"
        source.write_text(_CONTROL_SOURCE)
        built = subprocess.run(
            ["cc", "-shared", "-fPIC", "-o", str(control), str(source)],
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            print(f"instructions_bench: cannot build the callgrind control: {built.stderr}")
            return 1
        sides = {"this checkout": ROOT}
        if args.baseline is not None:
            sides = {"baseline": args.baseline.resolve(), **sides}
        counts = {
            name: _run(code, control, Path(work) / name.replace(" ", "-"), args.requests)
            for name, code in sides.items()
        }
    _report(counts, args.requests)
    return 0


def _run(code: Path, control: Path, out_dir: Path, requests: int) -> dict[str, float]:
    """Instructions per request of each case, for the code in `code`."""
    out_dir.mkdir()
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={out_dir}/callgrind.%p",
        # This file, run on the other checkout's modules (its bench.server among them).
        sys.executable, str(Path(__file__).resolve()),
        "--child", str(control), str(requests),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(code), "OTEL_SDK_DISABLED": "true"}
    done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"instructions_bench: the run on {code} failed:\n{done.stderr[-3000:]}")
    counts: dict[str, float] = {}
    for dump in out_dir.glob("callgrind.*.*"):  # one file per dump: <pid>.<n>
        text = dump.read_text(errors="replace")
        label = re.search(r"^desc: Trigger: Client Request: (\w+)", text, re.M)
        total = re.search(r"^summary: (\d+)", text, re.M)
        if label and total:
            counts[label.group(1)] = int(total.group(1)) / requests
    return counts


async def _count(control_path: Path, requests: int) -> None:
    """Under valgrind: warm every case up, then count each one's requests apart."""
    from bench.processes import BenchRedis

    control = ctypes.CDLL(str(control_path))
    redis = BenchRedis()
    os.environ["REDIS_URL"] = redis.start()
    from bench.server import create_bench_app

    app = create_bench_app()
    try:
        async with app.router.lifespan_context(app):
            context_session = "instructions-context"
            for _ in range(100):  # the context cases read 50 of these 100 messages
                await _call_app(app, plain_write(context_session))
            raw = {
                key: make(context_session if key in ("gc", "pc") else f"instructions-{key}")
                for key, make in CASES.values()
            }
            for request in raw.values():
                for _ in range(WARMUP):
                    await _call_app(app, request)
            control.start()
            for key, request in raw.items():
                control.zero()
                for _ in range(requests):
                    await _call_app(app, request)
                control.dump(key.encode())
            control.stop()
    finally:
        redis.stop()


async def _call_app(app: Any, raw: bytes) -> bytes:
    """The body of the app's answer to `raw` (an HTTP/1.1 request as a client sends it, e.g.
    from bench.http_load.encode_json_post); anything but a 200 raises."""
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *header_lines = head.split(b"\r\n")
    method, target, _ = request_line.split(b" ")
    path, _, query = target.partition(b"?")
    headers = []
    for line in header_lines:
        name, _, value = line.partition(b": ")
        headers.append((name.lower(), value))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method.decode(),
        "scheme": "http",
        "path": path.decode(),
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = sent[0]["status"]
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    if status != 200:
        raise RuntimeError(f"{method.decode()} {path.decode()} answered {status}: {answer[:200]!r}")
    return answer


def _report(counts: dict[str, dict[str, float]], requests: int) -> None:
    sides = list(counts)
    print(f"== Instructions per request (callgrind, {requests} requests per case, in-process app)")
    header = f"{'case':31}" + "".join(f"  {side:>15}" for side in sides)
    print(header)
    print("-" * len(header))
    for name, (key, _) in CASES.items():
        print(f"{name:31}" + "".join(f"  {counts[side][key]:>15,.0f}" for side in sides))
    pairs = (("write", "gw", "pw"), ("context", "gc", "pc"))
    for name, graphql, plain in pairs:
        ratios = "".join(f"  {counts[s][graphql] / counts[s][plain]:>14.3f}x" for s in sides)
        print(f"{'GraphQL / plain, ' + name:31}{ratios}")
    # GraphQL's own work apart: a cheaper shared path raises the ratio while this falls.
    for name, graphql, plain in pairs:
        own = "".join(f"  {counts[s][graphql] - counts[s][plain]:>15,.0f}" for s in sides)
        print(f"{'GraphQL - plain, ' + name:31}{own}")


if __name__ == "__main__":
    raise SystemExit(main())
