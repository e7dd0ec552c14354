"""The vendored GraphiQL assets: exactly the files of the manifest, the files the page loads,
each with its licence, and the versions Strawberry's own page asks for."""

from __future__ import annotations

import base64
import hashlib
import json
import re

from starlette.routing import Mount
from strawberry.http.ides import get_graphql_ide_html

from maas.graphiql import (
    ASSETS_DIR,
    ASSETS_MOUNT,
    PAGE_PATH,
    STATIC_DIR,
    graphiql_page,
    graphiql_routes,
)
from maas.settings import Settings

MANIFEST = json.loads((STATIC_DIR / "manifest.json").read_text())
FILES = {f["path"]: f for package in MANIFEST["packages"] for f in package["files"]}
# A script or stylesheet of a page, with its SRI hash.
ASSET_REF = re.compile(r'(?:src|href)="([^"]+)"\s+integrity="([^"]+)"')
REVENDOR = "run `uv run python scripts/vendor_graphiql.py`"


def test_the_vendored_files_are_exactly_those_of_the_manifest():
    on_disk = {p.relative_to(ASSETS_DIR).as_posix() for p in ASSETS_DIR.rglob("*") if p.is_file()}
    assert on_disk == set(FILES)
    for path, entry in FILES.items():
        data = (ASSETS_DIR / path).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["bytes"], entry["sha256"])
    assert hashlib.sha256(PAGE_PATH.read_bytes()).hexdigest() == MANIFEST["page"]["sha256"]


def test_the_page_loads_only_vendored_files_relative_to_itself():
    page = PAGE_PATH.read_text()
    refs = dict(ASSET_REF.findall(page))
    loaded = {ref.removeprefix("graphiql/static/"): sri for ref, sri in refs.items()}
    assert all(ref.startswith("graphiql/static/") for ref in refs)
    assert loaded == {path: f["sri"] for path, f in FILES.items() if not path.endswith("LICENSE")}
    # Besides them, only the inline favicon.
    assert re.findall(r'(?:src|href)="(?!graphiql/static/)([^",]+)', page) == ["data:image/svg+xml"]


def test_every_vendored_package_carries_its_mit_licence():
    for package in MANIFEST["packages"]:
        assert package["license"] == "MIT"
        licence = (ASSETS_DIR / f"{package['name']}@{package['version']}" / "LICENSE").read_text()
        assert "Permission is hereby granted, free of charge" in licence
    assert "Permission is hereby granted" in (STATIC_DIR / "LICENSE-strawberry").read_text()


def test_the_vendored_versions_are_those_strawberrys_page_loads():
    strawberry = get_graphql_ide_html("graphiql")
    cdn_refs = {
        ref.removeprefix("https://unpkg.com/"): sri for ref, sri in ASSET_REF.findall(strawberry)
    }
    vendored = {path: f["sri"] for path, f in FILES.items() if not path.endswith("LICENSE")}
    assert cdn_refs == vendored, f"Strawberry's GraphiQL page changed: {REVENDOR}"


def test_the_assets_are_mounted_only_when_graphiql_is_on():
    keys = {"k": "acme"}
    production = Settings(_env_file=None, environment="production", api_keys=keys)  # type: ignore[call-arg]
    assert graphiql_routes(production) == []
    on = Settings(_env_file=None, environment="production", api_keys=keys, graphiql=True)  # type: ignore[call-arg]
    [route] = graphiql_routes(on)
    assert isinstance(route, Mount)
    assert route.path == ASSETS_MOUNT


def test_the_page_may_run_only_its_own_inline_script():
    policy = graphiql_page().headers["content-security-policy"]
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src"))
    [inline] = re.findall(r"<script>(.*?)</script>", PAGE_PATH.read_text(), re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert script_src == f"script-src 'self' 'sha256-{digest}'"
    assert "http" not in policy
