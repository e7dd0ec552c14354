from pathlib import Path

from schema import build_schema, schema

ROOT = Path(__file__).resolve().parents[2]


def test_exported_sdl_matches_the_code():
    exported = (ROOT / "schema.graphql").read_text()
    assert exported == schema.as_str() + "\n", "run `uv run maas export-schema`"


def test_limits_do_not_change_the_sdl():
    assert build_schema().as_str() == schema.as_str()
