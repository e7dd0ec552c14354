from datetime import UTC, datetime
from pathlib import Path

from schema import build_schema, schema
from schema.types import Message
from services import stm_model

ROOT = Path(__file__).resolve().parents[2]


def test_exported_sdl_matches_the_code():
    exported = (ROOT / "schema.graphql").read_text()
    assert exported == schema.as_str() + "\n", "run `uv run maas export-schema`"


def test_limits_do_not_change_the_sdl():
    assert build_schema().as_str() == schema.as_str()


def test_the_services_messages_answer_every_message_field():
    # Message is answered by stm_model.Message objects as they are (schema/types.py).
    stored = stm_model.Message("m1", 1, stm_model.Role.USER, "hi", 1, datetime.now(UTC))
    fields = Message.__strawberry_definition__.fields
    missing = [f.python_name for f in fields if not hasattr(stored, f.python_name)]
    assert missing == []
