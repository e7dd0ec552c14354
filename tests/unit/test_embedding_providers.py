"""EMBEDDING_* settings to mem0 embedder configs, the clear errors, and the dimension check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mem0.embeddings.base import EmbeddingBase
from mem0.utils.factory import EmbedderFactory

from services.embeddings.local import LocalEmbedding
from services.embeddings.minilm import default_model_dir
from services.embeddings.providers import (
    EMBEDDER_CLASSES,
    EmbeddingConfigError,
    EmbeddingOptions,
    check_dimensions,
    mem0_embedder_config,
)
from tests.support.fake_llm import FakeLLM, fake_embedding


def installed(value: bool) -> Callable[[str], bool]:
    return lambda module: value


def options(provider: str, **overrides: Any) -> EmbeddingOptions:
    values: dict[str, Any] = {"api_key": None, "model": None, "base_url": None, "dims": None}
    values.update(overrides)
    return EmbeddingOptions(provider=provider, **values)


@pytest.fixture
def maas_embedders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our embedders registered into mem0's factory, as the app does; undone after the test."""
    for name, path in EMBEDDER_CLASSES.items():
        monkeypatch.setitem(EmbedderFactory.provider_to_class, name, path)


def build(opts: EmbeddingOptions) -> EmbeddingBase:
    provider, config = mem0_embedder_config(opts)
    return EmbedderFactory.create(provider, config, None)


# -- mapping ---------------------------------------------------------------------------------


def test_local_is_our_numpy_embedder() -> None:
    assert mem0_embedder_config(options("local")) == (
        "maas_local",
        {"model": None, "embedding_dims": None},
    )
    folder = str(default_model_dir())
    assert mem0_embedder_config(options("local", model=folder, dims=384)) == (
        "maas_local",
        {"model": folder, "embedding_dims": 384},
    )


def test_openai_defaults_and_explicit_values() -> None:
    assert mem0_embedder_config(options("openai", api_key="sk-1")) == (
        "openai",
        {
            "api_key": "sk-1",
            "openai_base_url": "https://api.openai.com/v1",
            "model": "text-embedding-3-small",
            "embedding_dims": None,
        },
    )
    custom = options(
        "openai", api_key="sk-1", model="text-embedding-3-large", base_url="http://x/v1", dims=256
    )
    assert mem0_embedder_config(custom) == (
        "openai",
        {
            "api_key": "sk-1",
            "openai_base_url": "http://x/v1",
            "model": "text-embedding-3-large",
            "embedding_dims": 256,
        },
    )


def test_openai_compatible_server_may_go_without_key() -> None:
    _, config = mem0_embedder_config(options("openai", base_url="http://localhost:8080/v1"))
    assert config["api_key"] == "not-needed"


def test_azure_openai_maps_endpoint_deployment_and_version() -> None:
    opts = options(
        "azure_openai",
        api_key="az-key",
        model="my-embeddings",
        base_url="https://example.openai.azure.com",
        dims=1536,
        azure_api_version="2024-10-21",
    )
    assert mem0_embedder_config(opts, installed=installed(True)) == (
        "azure_openai",
        {
            "model": "my-embeddings",
            "embedding_dims": 1536,
            "azure_kwargs": {
                "api_key": "az-key",
                "azure_endpoint": "https://example.openai.azure.com",
                "azure_deployment": "my-embeddings",
                "api_version": "2024-10-21",
            },
        },
    )


def test_cohere_is_our_embedder_with_its_default_model() -> None:
    assert mem0_embedder_config(options("cohere", api_key="co-key")) == (
        "maas_cohere",
        {"api_key": "co-key", "model": "embed-v4.0", "embedding_dims": None},
    )
    proxied = options("cohere", api_key="co-key", model="embed-v4.0", base_url="http://c", dims=512)
    assert mem0_embedder_config(proxied) == (
        "maas_cohere",
        {
            "api_key": "co-key",
            "model": "embed-v4.0",
            "embedding_dims": 512,
            "model_kwargs": {"base_url": "http://c"},
        },
    )


def test_huggingface_with_base_url_speaks_openai_to_tei_without_extras() -> None:
    opts = options("huggingface", base_url="http://tei:8080/v1", dims=768)
    assert mem0_embedder_config(opts, installed=installed(False)) == (
        "openai",
        {
            "api_key": "not-needed",
            "openai_base_url": "http://tei:8080/v1",
            "model": "tei",
            "embedding_dims": None,
        },
    )


def test_huggingface_local_defaults_to_the_bundled_model() -> None:
    assert mem0_embedder_config(options("huggingface"), installed=installed(True)) == (
        "huggingface",
        {"model": str(default_model_dir()), "embedding_dims": None},
    )


def test_fastembed_and_ollama_pass_their_settings() -> None:
    assert mem0_embedder_config(
        options("fastembed", model="BAAI/bge-small-en-v1.5", dims=384), installed=installed(True)
    ) == ("fastembed", {"model": "BAAI/bge-small-en-v1.5", "embedding_dims": 384})
    assert mem0_embedder_config(
        options("ollama", model="nomic-embed-text", base_url="http://ollama:11434", dims=768),
        installed=installed(True),
    ) == (
        "ollama",
        {
            "model": "nomic-embed-text",
            "ollama_base_url": "http://ollama:11434",
            "embedding_dims": 768,
        },
    )


def test_provider_name_is_case_insensitive() -> None:
    assert mem0_embedder_config(options(" Local "))[0] == "maas_local"


# -- clear errors ----------------------------------------------------------------------------


AZURE = {"api_key": "k", "model": "m", "base_url": "https://a", "azure_api_version": "v"}


@pytest.mark.parametrize(
    ("provider", "settings", "module", "fix"),
    [
        ("huggingface", {}, "sentence_transformers", "pip install 'maas[huggingface]'"),
        ("fastembed", {}, "fastembed", "pip install 'maas[fastembed]'"),
        ("ollama", {}, "ollama", "pip install 'maas[ollama]'"),
        ("azure_openai", AZURE, "azure.identity", "pip install azure-identity"),
    ],
)
def test_missing_optional_package_is_named_with_the_fix(
    provider: str, settings: dict[str, Any], module: str, fix: str
) -> None:
    with pytest.raises(EmbeddingConfigError) as caught:
        mem0_embedder_config(options(provider, **settings), installed=installed(False))
    message = str(caught.value)
    assert message.startswith(f"EMBEDDING_PROVIDER={provider} ")
    assert f"(module {module!r} is not installed): {fix}" in message


def test_real_check_finds_the_optional_packages_missing_here() -> None:
    # The default install has none of the optional extras (pyproject's optional-dependencies).
    with pytest.raises(EmbeddingConfigError, match="maas\\[fastembed\\]"):
        mem0_embedder_config(options("fastembed"))


@pytest.mark.parametrize("provider", ["openai", "cohere"])
def test_missing_key_names_the_setting(provider: str) -> None:
    with pytest.raises(EmbeddingConfigError) as caught:
        mem0_embedder_config(options(provider))
    assert str(caught.value) == (
        f"EMBEDDING_PROVIDER={provider} needs EMBEDDING_API_KEY "
        "(or EMBEDDING_BASE_URL for a compatible server that needs no key)"
    )


def test_azure_names_every_missing_setting() -> None:
    with pytest.raises(EmbeddingConfigError) as caught:
        mem0_embedder_config(options("azure_openai", api_key="k"), installed=installed(True))
    assert str(caught.value) == (
        "EMBEDDING_PROVIDER=azure_openai needs EMBEDDING_BASE_URL (the resource endpoint), "
        "EMBEDDING_MODEL (the deployment name), EMBEDDING_API_VERSION"
    )


def test_unknown_provider_lists_the_supported_ones() -> None:
    with pytest.raises(EmbeddingConfigError, match="'voyage' is not supported; choose one of: "):
        mem0_embedder_config(options("voyage"))


def test_local_refuses_a_model_it_cannot_run() -> None:
    with pytest.raises(EmbeddingConfigError, match="EMBEDDING_MODEL='BAAI/bge-large-en'"):
        mem0_embedder_config(options("local", model="BAAI/bge-large-en"))
    assert mem0_embedder_config(options("local", model="all-MiniLM-L6-v2"))[0] == "maas_local"


# -- real embedders and the dimension check --------------------------------------------------


def test_openai_embedder_against_the_fake_server(fake_llm: FakeLLM) -> None:
    embedder = build(options("openai", api_key="test-key", base_url=fake_llm.base_url))
    assert embedder.embed("hello", "add") == pytest.approx(fake_embedding("hello"))
    assert check_dimensions(embedder, None) == 384
    assert check_dimensions(embedder, 384) == 384


def test_openai_sends_the_configured_dimensions(fake_llm: FakeLLM) -> None:
    embedder = build(options("openai", api_key="test-key", base_url=fake_llm.base_url, dims=256))
    assert check_dimensions(embedder, 256) == 256


def test_dimension_mismatch_says_what_to_set(fake_llm: FakeLLM) -> None:
    embedder = build(options("openai", api_key="test-key", base_url=fake_llm.base_url))
    with pytest.raises(EmbeddingConfigError) as caught:
        check_dimensions(embedder, 1536)
    assert str(caught.value) == (
        "EMBEDDING_DIMS is 1536 but model 'text-embedding-3-small' returns 384-dimensional "
        "vectors; set EMBEDDING_DIMS=384 or choose another model"
    )


def test_huggingface_tei_endpoint_works_through_the_openai_route(fake_llm: FakeLLM) -> None:
    embedder = build(options("huggingface", base_url=fake_llm.base_url))
    assert embedder.embed_batch(["a", "b"]) == [
        pytest.approx(fake_embedding("a")),
        pytest.approx(fake_embedding("b")),
    ]


@pytest.mark.usefixtures("maas_embedders")
def test_local_embedder_through_mem0s_factory() -> None:
    embedder = build(options("local"))
    assert isinstance(embedder, LocalEmbedding)
    assert embedder.config.embedding_dims == 384
    one = embedder.embed("The user likes green tea.", "search")
    many = embedder.embed_batch(["The user likes green tea.", "Another memory."])
    assert len(one) == 384
    assert isinstance(one[0], float)
    assert one == pytest.approx(many[0], abs=1e-6)
    assert embedder.embed_batch([]) == []
    assert check_dimensions(embedder, 384) == 384


@pytest.mark.usefixtures("maas_embedders")
def test_local_embedder_loads_a_model_folder_once() -> None:
    first = build(options("local", model=str(default_model_dir())))
    second = build(options("local"))
    assert isinstance(first, LocalEmbedding)
    assert isinstance(second, LocalEmbedding)
    assert first.encoder is second.encoder


@pytest.mark.usefixtures("maas_embedders")
def test_local_dimension_mismatch_names_the_model() -> None:
    with pytest.raises(EmbeddingConfigError, match="model 'all-MiniLM-L6-v2' returns 384-dim"):
        check_dimensions(build(options("local", dims=1536)), 1536)
