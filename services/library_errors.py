"""Recognising a client library's exceptions without importing the library.

The providers' libraries (openai, pymongo, ...) are imported only when a configured provider
uses them, so that start-up on other settings does not pay for them. An exception of a library
can exist only once the library is imported: until then, nothing is one of its exceptions.
"""

from __future__ import annotations

import sys


def is_error_of(exc: BaseException, module: str, *names: str) -> bool:
    """Whether `exc` is an instance of one of `module`'s classes `names` (False while `module`
    has not been imported; the check never imports it)."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(exc, tuple(getattr(loaded, name) for name in names))
