"""GraphiQL over plain HTTP: the page and every asset it loads come from the server itself, in
development; in production neither is served unless GRAPHIQL turns it on."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.parse

import httpx
import pytest

from maas.graphiql import ASSETS_MOUNT, STATIC_DIR
from tests.support.patience import patience

# A script or stylesheet of the page, with its SRI hash.
ASSET_REF = re.compile(r'(?:src|href)="([^"]+)"\s+integrity="([^"]+)"')
BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}
MANIFEST = json.loads((STATIC_DIR / "manifest.json").read_text())
ASSET = f"{ASSETS_MOUNT}/{MANIFEST['packages'][0]['files'][0]['path']}"


async def test_graphiql_and_all_it_loads_are_served_by_the_server(url):
    async with httpx.AsyncClient(base_url=url, timeout=patience()) as client:
        page = await client.get("/graphql", headers=BROWSER)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "connect-src 'self'" in page.headers["content-security-policy"]
        refs = ASSET_REF.findall(page.text)
        assert refs
        for ref, sri in refs:
            assert urllib.parse.urlsplit(ref).netloc == ""  # relative: works behind a prefix
            asset = await client.get(urllib.parse.urljoin(f"{url}/graphql", ref))
            assert asset.status_code == 200, ref
            suffix = ref[ref.rindex(".") :]
            assert asset.headers["content-type"].startswith(CONTENT_TYPES[suffix])
            assert "immutable" in asset.headers["cache-control"]
            digest = base64.b64encode(hashlib.sha384(asset.content).digest()).decode()
            assert f"sha384-{digest}" == sri  # what the browser checks before running it


@pytest.mark.parametrize(("graphiql", "status"), [(None, 404), (True, 200)], ids=["off", "on"])
async def test_production_serves_graphiql_only_when_turned_on(module_server, graphiql, status):
    url = module_server(environment="production", allow_unauthenticated=True, graphiql=graphiql)
    async with httpx.AsyncClient(base_url=url, timeout=patience()) as client:
        page = await client.get("/graphql", headers=BROWSER)
        assert page.status_code == status
        assert ("GraphiQL" in page.text) is (status == 200)
        assert (await client.get(ASSET)).status_code == status
