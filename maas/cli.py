"""`maas serve`, `maas extract`, `maas export-schema` and `maas hash-key`."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import logging.config
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from maas.api_keys import hash_key
from maas.log_format import logging_config
from maas.settings import Settings

log = logging.getLogger("maas")
# prometheus-client's multiprocess mode; not imported here, so this process never chooses a mode.
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def serve(settings: Settings, workers: int) -> None:
    """Serve the API; with REDIS_URL unset, run an embedded Redis for as long as we run."""
    embedded = None
    redis_url = settings.redis_url
    if not redis_url:
        from stores.redis_server import RedisServerProcess

        embedded = RedisServerProcess(settings.data_dir / "redis", persistent=True)
        redis_url = embedded.start()
        log.info("embedded Redis at %s, data in %s", redis_url, embedded.data_dir)
        # Worker processes read their settings from the environment.
        os.environ["REDIS_URL"] = redis_url
        # uvicorn re-raises the SIGTERM it caught once it has shut down; by default that would
        # kill us before `finally` stops Redis.
        signal.signal(signal.SIGTERM, _exit_cleanly)
    # Long-term extraction in a low-priority process of its own (maas/extraction_process.py),
    # started once there are jobs.
    extraction = None
    if settings.stm_extraction_worker == "process":
        from maas.extraction_process import ExtractionLauncher
        from stores.redis_keys import extraction_queue

        extraction = ExtractionLauncher(
            redis_url,
            cluster=settings.redis_cluster,
            queue_key=extraction_queue(settings.redis_key_prefix),
        ).start()
    try:
        with shared_metrics_dir(workers):
            uvicorn.run(
                "maas.app:create_app",
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=workers,
                log_level=settings.log_level.lower(),
                log_config=logging_config(
                    settings.log_level, settings.log_format, settings.log_flush_seconds
                ),
                ws_max_size=settings.max_request_bytes,
                lifespan="on",
                # A connection that never finishes must not hold a shutdown forever.
                timeout_graceful_shutdown=settings.shutdown_grace_seconds,
            )
    finally:
        if extraction is not None:
            extraction.stop(settings.llm_timeout_seconds)
        if embedded is not None:
            embedded.stop()


@contextlib.contextmanager
def shared_metrics_dir(workers: int) -> Iterator[str | None]:
    """With several workers, a fresh private directory in PROMETHEUS_MULTIPROC_DIR, where
    prometheus-client's multiprocess mode keeps every worker's values so that each scrape of
    /metrics reports them all; removed at exit. One the operator set is used as it is."""
    if os.environ.get(MULTIPROC_DIR_ENV):
        yield os.environ[MULTIPROC_DIR_ENV]
        return
    if workers < 2:
        yield None
        return
    # New, so no file of an earlier run counts; the workers inherit the variable as they start.
    path = tempfile.mkdtemp(prefix="maas-metrics-")
    os.environ[MULTIPROC_DIR_ENV] = path
    log.info("%d workers share their metrics in %s", workers, path)
    try:
        yield path
    finally:
        del os.environ[MULTIPROC_DIR_ENV]
        shutil.rmtree(path, ignore_errors=True)


def settings_errors(exc: ValidationError) -> str:
    """One line per invalid setting, without the values given (they may hold secrets)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        name = "_".join(str(part) for part in error["loc"][:1]).upper()
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {name}: {message}" if name else f"  {message}")
    return "\n".join(lines)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def export_schema(path: Path) -> None:
    from schema import schema

    path.write_text(schema.as_str() + "\n")


def print_key_digest() -> None:
    """Print the API_KEYS entry of a key read from stdin (a prompt without echo on a
    terminal): never from the command line, where shell history and `ps` would keep it."""
    if sys.stdin.isatty():
        key = getpass.getpass("API key (not shown): ")
    else:
        key = sys.stdin.read().rstrip("\r\n")
    if not key.strip():
        raise SystemExit("maas hash-key: no key given on stdin")
    print(hash_key(key))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="maas", description="Memory as a Service")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="serve the GraphQL API")
    serve_cmd.add_argument("--workers", type=int, default=1)
    export = commands.add_parser("export-schema", help="write the schema's SDL")
    export.add_argument("path", type=Path, nargs="?", default=Path("schema.graphql"))
    commands.add_parser("extract", help="run long-term extraction jobs (maas serve starts one)")
    commands.add_parser(
        "hash-key", help="print the sha256:<hex> entry for API_KEYS of a key read from stdin"
    )
    args = parser.parse_args(argv)
    if args.command == "hash-key":
        # Needs no settings: it must work before any .env exists.
        print_key_digest()
        return
    try:
        settings = Settings()
    except ValidationError as exc:
        parser.exit(2, f"maas: cannot start, the settings are invalid:\n{settings_errors(exc)}\n")
    logging.config.dictConfig(
        logging_config(settings.log_level, settings.log_format, settings.log_flush_seconds)
    )
    if args.command == "serve":
        serve(settings, args.workers)
    elif args.command == "extract":
        from maas.extraction_process import run_extraction

        run_extraction(settings)
    else:
        export_schema(args.path)
