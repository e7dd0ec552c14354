"""The benchmark's server app: MaaS as `create_app` builds it, plus the plain JSON routes.

Run by the benchmark as `uvicorn bench.server:create_bench_app --factory`.
"""

from __future__ import annotations

from starlette.applications import Starlette

from bench.plain_routes import add_plain_routes
from maas.app import create_app


def create_bench_app() -> Starlette:
    """create_app(Settings()) from the environment, with /plain/... routes added."""
    return add_plain_routes(create_app())
