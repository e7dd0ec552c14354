"""compact_json gives what json.dumps with the same options gives."""

from __future__ import annotations

import json

from services.compact_json import compact_json


def test_compact_json_is_json_dumps_without_spaces() -> None:
    value = {"a": [1, 2.5, None, True], "é": "naïve 😀", "nested": {"x": ""}}
    for ensure_ascii in (True, False):
        expected = json.dumps(value, separators=(",", ":"), ensure_ascii=ensure_ascii)
        assert compact_json(value, ensure_ascii=ensure_ascii) == expected
    assert compact_json(value) == json.dumps(value, separators=(",", ":"))
    assert "\\u00e9" in compact_json(value)
    assert "é" in compact_json(value, ensure_ascii=False)
