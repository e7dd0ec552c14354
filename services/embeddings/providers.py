"""Which mem0 embedder serves each EMBEDDING_PROVIDER, with what configuration.

mem0 builds its embedder from a provider name and a config dict
(`EmbedderFactory.create(provider, config, None)` -> `cls(BaseEmbedderConfig(**config))`);
`mem0_embedder_config` turns our settings into that pair, failing early, with a message an
operator can act on, when a key, an endpoint or an optional package is missing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mem0.embeddings.base import EmbeddingBase

# Our embedders, by the provider names the app registers into mem0's EmbedderFactory.
EMBEDDER_CLASSES: dict[str, str] = {
    "maas_local": "services.embeddings.local.LocalEmbedding",
    "maas_cohere": "services.embeddings.cohere.CohereEmbedding",
}
PROVIDERS = ("local", "openai", "azure_openai", "cohere", "huggingface", "fastembed", "ollama")
OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_DEFAULT_MODEL = "text-embedding-3-small"
COHERE_DEFAULT_MODEL = "embed-v4.0"
# Names under which the bundled model may be asked for explicitly.
LOCAL_MODEL_NAMES = frozenset({"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})
# Compatible servers that need no key still need the clients to send one.
NO_KEY = "not-needed"
PROBE_TEXT = "What does the user like to drink in the morning?"


class EmbeddingConfigError(Exception):
    """The embedding settings cannot work; the message says which setting to change."""


@dataclass(frozen=True)
class EmbeddingOptions:
    """The operator's embedding settings (EMBEDDING_PROVIDER, EMBEDDING_API_KEY, ...)."""

    provider: str
    api_key: str | None
    model: str | None
    base_url: str | None
    dims: int | None
    azure_api_version: str | None = None


def module_installed(name: str) -> bool:
    """Whether `name` (possibly dotted) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def mem0_embedder_config(
    options: EmbeddingOptions, *, installed: Callable[[str], bool] = module_installed
) -> tuple[str, dict[str, Any]]:
    """mem0's provider name and config dict for our settings; EmbeddingConfigError if unusable."""
    provider = options.provider.strip().lower()
    builder = _BUILDERS.get(provider)
    if builder is None:
        raise EmbeddingConfigError(
            f"EMBEDDING_PROVIDER={options.provider!r} is not supported; "
            f"choose one of: {', '.join(PROVIDERS)}"
        )
    return builder(options, installed)


def check_dimensions(embedder: EmbeddingBase, expected: int | None) -> int:
    """Embed a probe text and return its real dimension; it must equal `expected` when set."""
    vector = embedder.embed(PROBE_TEXT, "search")
    actual = len(vector)
    if actual == 0:
        raise EmbeddingConfigError(f"model {_model_name(embedder)!r} returned an empty vector")
    if expected is not None and expected != actual:
        raise EmbeddingConfigError(
            f"EMBEDDING_DIMS is {expected} but model {_model_name(embedder)!r} returns "
            f"{actual}-dimensional vectors; set EMBEDDING_DIMS={actual} or choose another model"
        )
    return actual


def _model_name(embedder: EmbeddingBase) -> str:
    return str(getattr(embedder.config, "model", None) or type(embedder).__name__)


def _local(options: EmbeddingOptions, installed: Callable[[str], bool]) -> tuple[str, dict]:
    model = options.model
    if model and model.lower() not in LOCAL_MODEL_NAMES and not Path(model).is_dir():
        raise EmbeddingConfigError(
            f"EMBEDDING_MODEL={model!r}: EMBEDDING_PROVIDER=local runs all-MiniLM-L6-v2 (leave "
            "EMBEDDING_MODEL unset) or a sentence-transformers BERT model from a local folder "
            "(set EMBEDDING_MODEL to its path)"
        )
    return "maas_local", {"model": model, "embedding_dims": options.dims}


def _openai(options: EmbeddingOptions, installed: Callable[[str], bool]) -> tuple[str, dict]:
    return "openai", {
        "api_key": _key_or_placeholder(options, "openai"),
        # Always explicit: otherwise mem0 falls back to OPENAI_BASE_URL from the environment.
        "openai_base_url": options.base_url or OPENAI_BASE_URL,
        "model": options.model or OPENAI_DEFAULT_MODEL,
        "embedding_dims": options.dims,
    }


def _azure_openai(options: EmbeddingOptions, installed: Callable[[str], bool]) -> tuple[str, dict]:
    missing = [
        name
        for name, value in (
            ("EMBEDDING_BASE_URL (the resource endpoint)", options.base_url),
            ("EMBEDDING_MODEL (the deployment name)", options.model),
            ("EMBEDDING_API_VERSION", options.azure_api_version),
        )
        if not value
    ]
    if missing:
        raise EmbeddingConfigError(f"EMBEDDING_PROVIDER=azure_openai needs {', '.join(missing)}")
    # mem0's Azure embedder imports azure-identity (for keyless sign-in) whether or not a key is
    # given, so without it the embedder cannot even load.
    _require(
        installed,
        "azure.identity",
        "EMBEDDING_PROVIDER=azure_openai needs the 'azure-identity' package, which mem0's Azure "
        "embedder imports",
        "pip install azure-identity",
    )
    return "azure_openai", {
        "model": options.model,
        "embedding_dims": options.dims,
        "azure_kwargs": {
            "api_key": options.api_key,
            "azure_endpoint": options.base_url,
            "azure_deployment": options.model,
            "api_version": options.azure_api_version,
        },
    }


def _cohere(options: EmbeddingOptions, installed: Callable[[str], bool]) -> tuple[str, dict]:
    config: dict[str, Any] = {
        "api_key": _key_or_placeholder(options, "cohere"),
        "model": options.model or COHERE_DEFAULT_MODEL,
        "embedding_dims": options.dims,
    }
    if options.base_url:
        # BaseEmbedderConfig has no generic base URL; model_kwargs carries provider extras.
        config["model_kwargs"] = {"base_url": options.base_url}
    return "maas_cohere", config


def _huggingface(options: EmbeddingOptions, installed: Callable[[str], bool]) -> tuple[str, dict]:
    if options.base_url:
        # A TEI server speaks the OpenAI embeddings API. mem0's own huggingface embedder would
        # call it the same way, but imports sentence-transformers (and torch) even for a URL.
        # No `dimensions` is sent (embedding_dims stays unset): TEI serves one fixed size.
        return "openai", {
            "api_key": options.api_key or NO_KEY,
            "openai_base_url": options.base_url,
            "model": options.model or "tei",
            "embedding_dims": None,
        }
    _require(
        installed,
        "sentence_transformers",
        "EMBEDDING_PROVIDER=huggingface without EMBEDDING_BASE_URL runs a local "
        "sentence-transformers model, which needs the optional extra 'huggingface'",
        "pip install 'maas[huggingface]', or set EMBEDDING_BASE_URL to a "
        "text-embeddings-inference server, or use EMBEDDING_PROVIDER=local",
    )
    from services.embeddings.minilm import default_model_dir

    # Default to the bundled folder: mem0's default model would be downloaded at start-up.
    return "huggingface", {
        "model": options.model or str(default_model_dir()),
        "embedding_dims": options.dims,
    }


def _fastembed(options: EmbeddingOptions, installed: Callable[[str], bool]) -> tuple[str, dict]:
    _require(
        installed,
        "fastembed",
        "EMBEDDING_PROVIDER=fastembed needs the optional extra 'fastembed'",
        "pip install 'maas[fastembed]', or use EMBEDDING_PROVIDER=local",
    )
    return "fastembed", {"model": options.model, "embedding_dims": options.dims}


def _ollama(options: EmbeddingOptions, installed: Callable[[str], bool]) -> tuple[str, dict]:
    _require(
        installed,
        "ollama",
        "EMBEDDING_PROVIDER=ollama needs the optional extra 'ollama'",
        "pip install 'maas[ollama]', or use EMBEDDING_PROVIDER=local",
    )
    return "ollama", {
        "model": options.model,
        "ollama_base_url": options.base_url,
        "embedding_dims": options.dims,
    }


def _key_or_placeholder(options: EmbeddingOptions, provider: str) -> str:
    """The API key; a compatible server at EMBEDDING_BASE_URL may do without one."""
    if options.api_key:
        return options.api_key
    if options.base_url:
        return NO_KEY
    raise EmbeddingConfigError(
        f"EMBEDDING_PROVIDER={provider} needs EMBEDDING_API_KEY "
        "(or EMBEDDING_BASE_URL for a compatible server that needs no key)"
    )


def _require(installed: Callable[[str], bool], module: str, need: str, fix: str) -> None:
    if not installed(module):
        raise EmbeddingConfigError(f"{need} (module {module!r} is not installed): {fix}")


_BUILDERS: dict[str, Callable[[EmbeddingOptions, Callable[[str], bool]], tuple[str, dict]]] = {
    "local": _local,
    "openai": _openai,
    "azure_openai": _azure_openai,
    "cohere": _cohere,
    "huggingface": _huggingface,
    "fastembed": _fastembed,
    "ollama": _ollama,
}
