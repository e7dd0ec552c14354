"""Which failures of an embedder mean "the embedding provider is unavailable".

Only the provider's own failures do: it cannot be reached or timed out (transport errors), it
failed (5xx), it refused our credentials (401/403: the operator's key, not the client's input)
or it is throttling us (429). Anything else — input no model can take, a bug, an unexpected
answer — is not the provider being down: blaming it would send clients to retry a request that
can never succeed and count a dependency error that did not happen.

Clients covered: openai (OpenAI, Azure OpenAI, TEI and other compatible servers), cohere, ollama
and anything on httpx; their status errors carry `status_code` (httpx's on `.response`).
"""

from __future__ import annotations

import httpx

from services.library_errors import is_error_of

# Statuses that say the provider, not the request, is the problem.
UNAVAILABLE_STATUSES = frozenset({401, 403, 408, 429})
_TRANSPORT = (httpx.TransportError, ConnectionError, TimeoutError)
_MAX_CHAIN = 8  # causes followed (a client may wrap its transport error)


def is_provider_failure(exc: BaseException) -> bool:
    """True when `exc`, or an exception it was raised from, is a failure of the provider."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        if isinstance(current, _TRANSPORT) or is_error_of(current, "openai", "APIConnectionError"):
            return True
        status = _status(current)
        if status is not None and (status >= 500 or status in UNAVAILABLE_STATUSES):
            return True
        current = current.__cause__ or current.__context__
    return False


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None and isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
    return status if isinstance(status, int) else None
