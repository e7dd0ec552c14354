"""CohereEmbedding over real HTTP against a local fake of Cohere's v2 embed API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cohere.core.api_error import ApiError
from mem0.utils.factory import EmbedderFactory

from services.embeddings.cohere import CohereEmbedding
from services.embeddings.providers import (
    EMBEDDER_CLASSES,
    EmbeddingConfigError,
    EmbeddingOptions,
    check_dimensions,
    mem0_embedder_config,
)
from tests.support.fake_cohere import FakeCohere
from tests.support.fake_llm import fake_embedding


@pytest.fixture(scope="module")
def fake_cohere_server() -> Iterator[FakeCohere]:
    with FakeCohere() as server:
        yield server


@pytest.fixture
def fake_cohere(fake_cohere_server: FakeCohere) -> FakeCohere:
    """The fake, with no requests or failures left from another test."""
    fake_cohere_server.reset()
    return fake_cohere_server


@pytest.fixture
def make_embedder(
    fake_cohere: FakeCohere, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., CohereEmbedding]]:
    """Builds the embedder as the app does: settings -> mem0 config -> mem0's factory."""
    for name, path in EMBEDDER_CLASSES.items():
        monkeypatch.setitem(EmbedderFactory.provider_to_class, name, path)
    built: list[CohereEmbedding] = []

    def make(
        *, model: str | None = None, dims: int | None = None, **extras: Any
    ) -> CohereEmbedding:
        options = EmbeddingOptions(
            provider="cohere",
            api_key="co-test-key",
            model=model,
            base_url=fake_cohere.base_url,
            dims=dims,
        )
        provider, config = mem0_embedder_config(options)
        config["model_kwargs"] = {**config["model_kwargs"], **extras}
        embedder = EmbedderFactory.create(provider, config, None)
        assert isinstance(embedder, CohereEmbedding)
        built.append(embedder)
        return embedder

    yield make
    for embedder in built:
        embedder.close()


@pytest.mark.parametrize(
    ("memory_action", "input_type"),
    [
        ("search", "search_query"),
        ("add", "search_document"),
        ("update", "search_document"),
        (None, "search_document"),
    ],
)
def test_input_type_follows_the_memory_action(
    make_embedder: Callable[..., CohereEmbedding],
    fake_cohere: FakeCohere,
    memory_action: Any,
    input_type: str,
) -> None:
    vector = make_embedder().embed("The user likes green tea.", memory_action)
    (request,) = fake_cohere.requests
    assert request["input_type"] == input_type
    assert request["texts"] == ["The user likes green tea."]
    assert request["model"] == "embed-v4.0"
    assert request["embedding_types"] == ["float"]
    assert "output_dimension" not in request
    assert fake_cohere.authorizations == ["Bearer co-test-key"]
    prefix = "query: " if input_type == "search_query" else ""
    assert vector == pytest.approx(fake_embedding(prefix + "The user likes green tea.", 1536))


def test_batch_of_200_goes_in_chunks_of_96_and_keeps_order(
    make_embedder: Callable[..., CohereEmbedding], fake_cohere: FakeCohere
) -> None:
    texts = [f"memory number {i}" for i in range(200)]
    vectors = make_embedder(dims=256).embed_batch(texts, "add")  # small vectors: a quick test
    assert [len(r["texts"]) for r in fake_cohere.requests] == [96, 96, 8]
    assert [t for r in fake_cohere.requests for t in r["texts"]] == texts
    assert len(vectors) == 200
    for text, vector in zip(texts, vectors, strict=True):
        assert vector == pytest.approx(fake_embedding(text, 256))


def test_empty_batch_makes_no_call(
    make_embedder: Callable[..., CohereEmbedding], fake_cohere: FakeCohere
) -> None:
    assert make_embedder().embed_batch([], "add") == []
    assert fake_cohere.requests == []


def test_embedding_dims_becomes_output_dimension_on_v4_models(
    make_embedder: Callable[..., CohereEmbedding], fake_cohere: FakeCohere
) -> None:
    embedder = make_embedder(dims=512)
    assert check_dimensions(embedder, 512) == 512
    assert fake_cohere.requests[0]["output_dimension"] == 512


def test_fixed_size_models_get_no_output_dimension_and_a_mismatch_is_explained(
    make_embedder: Callable[..., CohereEmbedding], fake_cohere: FakeCohere
) -> None:
    embedder = make_embedder(model="embed-english-v3.0", dims=384)
    with pytest.raises(EmbeddingConfigError) as caught:
        check_dimensions(embedder, 384)
    assert "output_dimension" not in fake_cohere.requests[0]
    assert str(caught.value) == (
        "EMBEDDING_DIMS is 384 but model 'embed-english-v3.0' returns 1024-dimensional vectors; "
        "set EMBEDDING_DIMS=1024 or choose another model"
    )


def test_api_error_becomes_an_exception(
    make_embedder: Callable[..., CohereEmbedding], fake_cohere: FakeCohere
) -> None:
    fake_cohere.fail_next(status=400)
    with pytest.raises(ApiError) as caught:
        make_embedder().embed("anything", "add")
    assert caught.value.status_code == 400


def test_server_errors_are_retried_then_raised(
    make_embedder: Callable[..., CohereEmbedding], fake_cohere: FakeCohere
) -> None:
    embedder = make_embedder(max_retries=1)
    fake_cohere.fail_next(count=1, status=503)
    assert len(embedder.embed("retried once", "add")) == 1536
    fake_cohere.fail_next(count=2, status=503)
    with pytest.raises(ApiError) as caught:
        embedder.embed("fails twice", "add")
    assert caught.value.status_code == 503
    assert len(fake_cohere.requests) == 4


def test_no_key_and_no_endpoint_is_a_configuration_error() -> None:
    with pytest.raises(EmbeddingConfigError, match="EMBEDDING_API_KEY"):
        CohereEmbedding()
