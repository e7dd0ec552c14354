"""A library's exceptions are recognised once it is loaded, and checking never loads it."""

from __future__ import annotations

import json
import sys

from services.library_errors import is_error_of


def test_an_exception_of_a_loaded_library_is_recognised() -> None:
    error = json.JSONDecodeError("bad", "{", 0)
    assert is_error_of(error, "json", "JSONDecodeError")
    assert is_error_of(error, "json.decoder", "JSONDecodeError")
    assert not is_error_of(ValueError("bad"), "json", "JSONDecodeError")


def test_a_library_not_loaded_is_not_imported_to_check() -> None:
    # No such module: an attempt to import it would raise ModuleNotFoundError.
    assert not is_error_of(ValueError("bad"), "maas_no_such_library.errors", "Failure")
    assert "maas_no_such_library.errors" not in sys.modules
