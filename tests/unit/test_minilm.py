"""The numpy all-MiniLM-L6-v2 encoder against vectors from sentence-transformers itself.

tests/unit/data/minilm_reference.json was written by tests/support/make_minilm_reference.py
(sentence-transformers on torch, in a throwaway virtualenv); this suite needs neither.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from services.embeddings.local import shared_encoder
from services.embeddings.minilm import MiniLMEncoder, _plan_attention, default_model_dir

REFERENCE = json.loads(
    (Path(__file__).parent / "data" / "minilm_reference.json").read_text(encoding="utf-8")
)
ITEMS: list[dict[str, Any]] = REFERENCE["items"]
MIN_COSINE = 0.9999
MAX_ABS_DIFF = 1e-4


@pytest.fixture(scope="session")
def encoder() -> MiniLMEncoder:
    """The process's one encoder, as the app's embedder uses it: loaded once per session."""
    return shared_encoder()


def assert_matches_reference(vector: np.ndarray, reference: list[float]) -> None:
    expected = np.asarray(reference, dtype=np.float64)
    cosine = float(vector @ expected / np.linalg.norm(expected))
    assert cosine > MIN_COSINE
    assert float(np.abs(vector - expected).max()) < MAX_ABS_DIFF


@pytest.mark.parametrize(
    "item", ITEMS, ids=[f"{i}-{item['tokens']}tok" for i, item in enumerate(ITEMS)]
)
def test_single_text_matches_sentence_transformers(
    encoder: MiniLMEncoder, item: dict[str, Any]
) -> None:
    (vector,) = encoder.encode([item["text"]])
    assert_matches_reference(vector, item["embedding"])


def test_mixed_length_batch_matches_sentence_transformers_in_input_order(
    encoder: MiniLMEncoder,
) -> None:
    # Shuffled and repeated, so sorting by length and restoring the order is exercised.
    order = [3, 7, 0, 5, 1, 7, 6, 2, 4, 0]
    vectors = encoder.encode([ITEMS[i]["text"] for i in order])
    for vector, i in zip(vectors, order, strict=True):
        assert_matches_reference(vector, ITEMS[i]["embedding"])


def test_padding_inside_an_attention_block_does_not_change_results(
    encoder: MiniLMEncoder,
) -> None:
    texts = [
        "The user keeps a small herb garden on the balcony.",
        "The user keeps an herb garden on the balcony.",
        "The user keeps a garden on the balcony.",
    ]
    lengths = np.array(sorted((len(encoder._tokenizer.encode(t).ids) for t in texts), reverse=True))
    assert len(set(lengths.tolist())) > 1
    assert _plan_attention(lengths)[0].gather is not None  # one padded block: the case under test
    together = encoder.encode(texts)
    for text, vector in zip(texts, together, strict=True):
        np.testing.assert_allclose(vector, encoder.encode([text])[0], atol=1e-6)


def test_output_is_float32_unit_vectors_of_384_dimensions(encoder: MiniLMEncoder) -> None:
    vectors = encoder.encode(["one", "two words", ""])
    assert encoder.dimensions == 384
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_texts_are_truncated_to_256_tokens(encoder: MiniLMEncoder) -> None:
    long_text = ITEMS[-1]["text"]
    assert ITEMS[-1]["tokens"] == encoder.max_seq_length == 256
    longer, original = encoder.encode(
        [long_text + " And a tail that lies past the limit.", long_text]
    )
    np.testing.assert_allclose(longer, original, atol=1e-6)


@pytest.mark.parametrize(
    ("query", "paraphrase", "shares_words"),
    [
        (
            "Where does the user live?",
            "The user's home is in Lisbon, Portugal.",
            "The user does live streams where they talk about games.",
        ),
        (
            "What pets does the user have?",
            "The user owns two cats and a dog.",
            "The user asked what the hotel's pet policy is.",
        ),
    ],
)
def test_nearest_text_is_the_paraphrase_not_the_one_sharing_words(
    encoder: MiniLMEncoder, query: str, paraphrase: str, shares_words: str
) -> None:
    candidates = [shares_words, paraphrase, "The user prefers tea over coffee."]
    query_vector, *vectors = encoder.encode([query, *candidates])
    scores = np.stack(vectors) @ query_vector
    assert candidates[int(np.argmax(scores))] == paraphrase


def test_concurrent_encodes_from_threads_agree_with_serial_ones(encoder: MiniLMEncoder) -> None:
    texts = [item["text"] for item in ITEMS]
    expected = encoder.encode(texts)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for _ in range(2):
                if worker % 2:
                    results[worker] = encoder.encode(texts)
                else:
                    index = worker % len(texts)
                    single = encoder.encode([texts[index]])[0]
                    np.testing.assert_allclose(single, expected[index], atol=1e-6)
        except BaseException as exc:  # reported below, from the test thread
            errors.append(exc)

    # Four threads on the shared encoder, half of them on the whole mixed-length batch: numpy
    # releases the GIL, so their encodes overlap on any machine with two cores.
    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for vectors in results.values():
        np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_loads_from_an_explicit_folder_and_refuses_other_pooling(tmp_path: Path) -> None:
    assert MiniLMEncoder.load(default_model_dir()).dimensions == 384
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(
        (default_model_dir() / "config.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (model / "1_Pooling").mkdir()
    (model / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    with pytest.raises(ValueError, match="only mean pooling is supported"):
        MiniLMEncoder.load(model)
