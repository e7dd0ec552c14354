"""The embedder guard blames the embedding provider only for the provider's own failures:
unreachable, timed out, 5xx, our key refused, throttled. Anything else propagates as it is."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from cohere.core.api_error import ApiError
from mem0.configs.embeddings.base import BaseEmbedderConfig
from mem0.embeddings.base import EmbeddingBase

from services.mem0_engine import EmbeddingUnavailable, GuardedEmbedder

REQUEST = httpx.Request("POST", "https://embeddings.example/v1/embeddings")


def _status(cls: type[openai.APIStatusError], code: int) -> openai.APIStatusError:
    return cls("refused", response=httpx.Response(code, request=REQUEST), body=None)


def _wrapped(cause: BaseException) -> Exception:
    try:
        raise cause
    except BaseException as exc:
        try:
            raise RuntimeError("the client wrapped it") from exc
        except RuntimeError as wrapper:
            return wrapper


class Raising(EmbeddingBase):
    def __init__(self, error: BaseException) -> None:
        super().__init__(BaseEmbedderConfig())
        self.error = error

    def embed(self, text: Any, memory_action: Any = None) -> list[float]:
        raise self.error


PROVIDER_FAILURES = [
    httpx.ConnectError("connection refused", request=REQUEST),
    httpx.ReadTimeout("timed out", request=REQUEST),
    openai.APIConnectionError(request=REQUEST),
    openai.APITimeoutError(request=REQUEST),
    _status(openai.InternalServerError, 500),
    _status(openai.APIStatusError, 503),
    _status(openai.AuthenticationError, 401),
    _status(openai.PermissionDeniedError, 403),
    _status(openai.RateLimitError, 429),
    ApiError(status_code=502),
    ApiError(status_code=401),
    httpx.HTTPStatusError("bad gateway", request=REQUEST, response=httpx.Response(502)),
    ConnectionRefusedError(111, "refused"),
    TimeoutError(),
    _wrapped(httpx.ConnectError("refused", request=REQUEST)),
]
OTHER_FAILURES = [
    ValueError("input the model cannot take"),
    UnicodeEncodeError("utf-8", "\ud83d", 0, 1, "surrogates not allowed"),
    _status(openai.BadRequestError, 400),
    _status(openai.NotFoundError, 404),
    ApiError(status_code=422),
    RuntimeError("a bug"),
    _wrapped(KeyError("embedding")),
]


@pytest.mark.parametrize("error", PROVIDER_FAILURES, ids=repr)
def test_a_failure_of_the_provider_is_embedding_unavailable(error: BaseException) -> None:
    embedder = GuardedEmbedder(Raising(error), "openai")
    with pytest.raises(EmbeddingUnavailable) as raised:
        embedder.embed("text", "add")
    assert raised.value.__cause__ is error


@pytest.mark.parametrize("error", OTHER_FAILURES, ids=repr)
def test_any_other_failure_propagates_as_it_is(error: BaseException) -> None:
    embedder = GuardedEmbedder(Raising(error), "openai")
    with pytest.raises(type(error)) as raised:
        embedder.embed("text", "add")
    assert raised.value is error
