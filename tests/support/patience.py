"""How long a test waits for something that ends by itself: the one setting every wait derives
from.

A busy or small machine is slow, never wrong: a server that boots in 4 s idle took 40-100 s on
a loaded 2-core machine, and a request that answers in milliseconds can take seconds there. So
no test waits a fixed number of seconds for a server, a subscription, a process or a cluster:
it waits `patience(share)`, a share of one base patience, and every such wait grows and shrinks
together with `MAAS_TEST_TIMEOUT_FACTOR` (default 1; `MAAS_TEST_TIMEOUT_FACTOR=3` triples
every wait on a slow machine, `0.2` makes a hung test fail sooner while debugging).

These are upper bounds, never pauses: a healthy run returns as soon as the awaited thing
happens, so a generous patience costs nothing unless something is broken. What a test must not
bound by time (how fast an answer came) it asserts by order or cause instead.

Settings a test keeps short on purpose, to provoke a timeout or an expiry, are `short(seconds)`:
scaled the same way, so the other side of that race (a request that must finish first, a
check that must still answer) has room on a loaded machine too.
"""

from __future__ import annotations

import os


def _factor() -> float:
    raw = os.environ.get("MAAS_TEST_TIMEOUT_FACTOR", "").strip()
    if not raw:
        return 1.0
    try:
        factor = float(raw)
    except ValueError:
        raise ValueError(f"MAAS_TEST_TIMEOUT_FACTOR must be a number, not {raw!r}") from None
    if not factor > 0:
        raise ValueError(f"MAAS_TEST_TIMEOUT_FACTOR must be above 0, not {raw!r}")
    return factor


FACTOR = _factor()

# The base patience: the longest a test waits for one step (a request's reply, an event, a
# server to come up in this process, a cluster to agree). Generous: an idle machine never comes
# near it, and a loaded one that does is better told to raise the factor than to fail randomly.
BASE_PATIENCE_S = 60.0
PATIENCE_S = BASE_PATIENCE_S * FACTOR


def patience(share: float = 1.0) -> float:
    """`share` of the patience, in seconds: every wait on a server or an event uses this."""
    return PATIENCE_S * share


def short(seconds: float) -> float:
    """A deliberately short setting (a timeout to trip, a TTL to expire), scaled by the factor."""
    return seconds * FACTOR


# A `maas serve` process: imports, then the app's startup; several boot side by side.
PROCESS_START_S = patience(3)
# A whole test, setup and teardown included (pytest-timeout): room for a process boot plus
# steps of its own. Only a hung test comes near it.
TEST_TIMEOUT_S = patience(5)
