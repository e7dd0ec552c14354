"""GraphiQL served entirely by MaaS: Strawberry's page, with the scripts and styles it would load
from a public CDN vendored under maas/static/graphiql (scripts/vendor_graphiql.py), so the page
works on a network without internet access and asks no other host for anything."""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

if TYPE_CHECKING:
    from starlette.types import Scope

    from maas.settings import Settings

STATIC_DIR = Path(__file__).parent / "static" / "graphiql"
ASSETS_DIR = STATIC_DIR / "assets"
PAGE_PATH = STATIC_DIR / "page.html"
# The page refers to its assets relative to itself ("graphiql/static/…" from ".../graphql"), so
# it also works behind a reverse proxy's path prefix.
ASSETS_MOUNT = "/graphiql/static"
# Asset paths carry the package version, so a file never changes under its URL.
IMMUTABLE = "public, max-age=31536000, immutable"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def graphiql_routes(settings: Settings) -> list[BaseRoute]:
    """The route of GraphiQL's assets, or none when GraphiQL is off."""
    if not settings.graphiql_enabled:
        return []
    return [Mount(ASSETS_MOUNT, app=ImmutableStaticFiles(directory=ASSETS_DIR), name="graphiql")]


def graphiql_page() -> Response:
    """The GraphiQL page, with a Content-Security-Policy that lets it reach only this origin."""
    html, policy = _page()
    return HTMLResponse(html, headers={"Content-Security-Policy": policy})


class ImmutableStaticFiles(StaticFiles):
    """Static files that browsers may cache for a year."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = IMMUTABLE
        return response


@functools.cache
def _page() -> tuple[str, str]:
    html = PAGE_PATH.read_text(encoding="utf-8")
    # The page's own inline script is allowed by its hash, no other inline script; styles
    # stay open because the editors set them inline. 'self' covers ws:// to this host too.
    scripts = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in _INLINE_SCRIPT.findall(html)
    )
    policy = (
        f"default-src 'self'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    )
    return html, policy
