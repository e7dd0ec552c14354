"""Vendors the assets of Strawberry's GraphiQL page from the npm registry.

Strawberry's page loads React, GraphiQL and its explorer plugin from unpkg.com, which an
air-gapped network cannot reach. This script reads the page of the installed Strawberry, fetches
the same package versions with `npm pack` (registry tarballs, which npm checks against the
registry's integrity), checks every file against the SRI hash the page itself carries, and
writes under maas/static/graphiql/:

    assets/<package>@<version>/<file>   the files the page loads, and each package's LICENSE
    page.html                           Strawberry's page with its CDN URLs made local
    LICENSE-strawberry                  the page's own licence
    manifest.json                       versions, tarball integrity, size and hashes of each file

Run it when a Strawberry upgrade changes its page (tests/unit/test_graphiql_assets.py says so):

    uv run python scripts/vendor_graphiql.py        # needs npm and the npm registry
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "maas" / "static" / "graphiql"
ASSETS = OUT / "assets"
CDN = "https://unpkg.com/"
# The page refers to the assets relative to itself (served at .../graphql), so it keeps working
# behind a path prefix; maas/graphiql.py mounts them at /graphiql/static.
LOCAL = "graphiql/static/"
# A CDN reference in Strawberry's page: the URL, then its SRI hash.
CDN_REF = re.compile(
    r'(?:src|href)="(?P<url>' + re.escape(CDN) + r'(?P<name>(?:@[^/"]+/)?[^/@"]+)@'
    r'(?P<version>[^/"]+)/(?P<file>[^"]+))"\s+integrity="(?P<sri>sha384-[^"]+)"'
)
REMOTE_REF = re.compile(r'(?:src|href)="(?:https?:)?//')
# Licences we have read and accept for assets served to browsers.
ACCEPTED_LICENSES = {"MIT"}
# Packages whose tarball ships no licence file: the file of another package from the same
# repository (github.com/graphql/graphiql, one MIT licence for all its packages).
LICENSE_FROM = {"@graphiql/plugin-explorer": "graphiql"}


@dataclass
class Asset:
    url: str
    name: str
    version: str
    file: str
    sri: str


def main() -> None:
    page = get_graphql_ide_html("graphiql")
    assets = [Asset(**m.groupdict()) for m in CDN_REF.finditer(page)]
    if not assets:
        sys.exit("No unpkg.com assets found in Strawberry's GraphiQL page: has its format changed?")
    local_page = page.replace(CDN, LOCAL)
    if REMOTE_REF.search(local_page):
        sys.exit("Strawberry's page loads something from a host other than unpkg.com: vendor it.")

    previous = _previous_integrity()
    packages: dict[str, list[Asset]] = {}
    for asset in assets:
        packages.setdefault(f"{asset.name}@{asset.version}", []).append(asset)

    shutil.rmtree(ASSETS, ignore_errors=True)
    manifest_packages = []
    license_files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tarballs = {spec: _npm_pack(spec, Path(tmp)) for spec in packages}
        for spec, (tarball, integrity) in tarballs.items():
            if previous.get(spec, integrity) != integrity:
                sys.exit(f"{spec}: the registry's tarball differs from the one vendored before.")
            with tarfile.open(tarball) as archive:
                package_json = json.loads(_read(archive, "package.json"))
                license_files[package_json["name"]] = _license_text(archive)
        for spec, (tarball, integrity) in tarballs.items():
            name, version = spec.rsplit("@", 1)
            with tarfile.open(tarball) as archive:
                package_json = json.loads(_read(archive, "package.json"))
                if package_json.get("license") not in ACCEPTED_LICENSES:
                    sys.exit(f"{spec}: licence {package_json.get('license')!r} not reviewed.")
                files = []
                for asset in packages[spec]:
                    data = _read(archive, asset.file)
                    if _sri(data) != asset.sri:
                        sys.exit(f"{asset.url}: npm's file does not match the page's SRI hash.")
                    files.append(_write(f"{spec}/{asset.file}", data))
            license_text = license_files[name] or license_files[LICENSE_FROM[name]]
            files.append(_write(f"{spec}/LICENSE", license_text))
            manifest_packages.append(
                {
                    "name": name,
                    "version": version,
                    "license": package_json["license"],
                    "integrity": integrity,
                    "files": files,
                }
            )

    _write_page(local_page)
    manifest = {
        "generated_by": "scripts/vendor_graphiql.py",
        "strawberry_graphql": importlib.metadata.version("strawberry-graphql"),
        "page": {"path": "page.html", "sha256": _sha256((OUT / "page.html").read_bytes())},
        "packages": manifest_packages,
    }
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(f["bytes"] for p in manifest_packages for f in p["files"])
    print(f"Vendored {len(assets)} assets of {len(packages)} packages, {total:,} bytes.")


def _previous_integrity() -> dict[str, str]:
    """name@version -> tarball integrity from the manifest already committed, if any."""
    path = OUT / "manifest.json"
    if not path.exists():
        return {}
    packages = json.loads(path.read_text())["packages"]
    return {f"{p['name']}@{p['version']}": p["integrity"] for p in packages}


def _npm_pack(spec: str, directory: Path) -> tuple[Path, str]:
    """Downloads the registry tarball of name@version; its path and its sha512 integrity."""
    reply = subprocess.run(  # noqa: S603 (a spec read from Strawberry's page)
        ["npm", "pack", spec, "--json", "--pack-destination", str(directory)],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
        cwd=directory,
    )
    packed = json.loads(reply.stdout)[0]
    tarball = directory / packed["filename"]
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if integrity != packed["integrity"]:
        sys.exit(f"{spec}: the tarball does not match npm's integrity {packed['integrity']}.")
    return tarball, integrity


def _read(archive: tarfile.TarFile, file: str) -> bytes:
    member = archive.extractfile(f"package/{file}")
    if member is None:
        raise FileNotFoundError(file)
    return member.read()


def _license_text(archive: tarfile.TarFile) -> bytes:
    """The package's licence file, or b"" when it ships none."""
    for member in archive.getmembers():
        if re.fullmatch(r"package/licen[cs]e(\.md|\.txt)?", member.name, re.IGNORECASE):
            return _read(archive, member.name.removeprefix("package/"))
    return b""


def _write(path: str, data: bytes) -> dict[str, object]:
    target = ASSETS / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return {"path": path, "bytes": len(data), "sha256": _sha256(data), "sri": _sri(data)}


def _write_page(page: str) -> None:
    version = importlib.metadata.version("strawberry-graphql")
    note = (
        f"<!-- Strawberry's GraphiQL page (strawberry-graphql {version}, MIT: LICENSE-strawberry)"
        " with its unpkg.com URLs pointed at the copies MaaS serves itself."
        " Generated by scripts/vendor_graphiql.py: do not edit. -->\n"
    )
    # After the doctype: anything before it would put the browser in quirks mode.
    doctype, rest = page.split("\n", 1)
    (OUT / "page.html").write_text(f"{doctype}\n{note}{rest}")
    strawberry = importlib.metadata.distribution("strawberry-graphql")
    licence = strawberry.read_text("licenses/LICENSE") or strawberry.read_text("LICENSE")
    if not licence:
        sys.exit("Strawberry's licence file was not found in its installed distribution.")
    (OUT / "LICENSE-strawberry").write_text(licence)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


if __name__ == "__main__":
    main()
