"""Plain texts for the sink profile: a JSONL file's texts, passages of a book, or generated filler."""

from __future__ import annotations

import json
import random
from pathlib import Path

from sinkbench.data.datadir import LONG_TEXT, book_text, data_file
from sinkbench.data.synthetic import FILLER
from sinkbench.errors import SinkbenchError

GENERATED = "generated filler text (no data directory)"
PROFILE_TEXTS = "lambada/lambada_test.jsonl"  # the profile's natural text: LAMBADA passages


def read_texts(path: Path, field: str, n: int) -> list[str]:
    """The first n texts of a JSONL file (one object per line, text under `field`)."""
    path = Path(path)
    if not path.is_file():
        raise SinkbenchError(f"data file not found: {path}")
    texts = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if len(texts) >= n:
                break
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise SinkbenchError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict) or field not in row:
                raise SinkbenchError(f"{path}:{number}: no '{field}' field (choose one with --field)")
            if not isinstance(row[field], str) or not row[field].strip():
                raise SinkbenchError(f"{path}:{number}: empty text in '{field}'")
            texts.append(row[field])
    if not texts:
        raise SinkbenchError(f"{path}: no texts found")
    return texts


def generated_texts(n: int, n_words: int, seed: int = 0) -> list[str]:
    """Plain English paragraphs made from sinkbench's own filler sentences, for runs without a data directory."""
    rng = random.Random(f"profile-{seed}")
    texts = []
    for _ in range(n):
        sentences, words = [], 0
        while words < n_words:
            sentence = rng.choice(FILLER)
            sentences.append(sentence)
            words += len(sentence.split())
        texts.append(" ".join(sentences))
    return texts


def long_texts(n: int, n_chars: int, data_dir) -> tuple[list[str], str]:
    """n consecutive passages of n_chars characters from the middle of War and Peace, or generated text."""
    if data_dir is None:
        return generated_texts(n, n_chars // 5), GENERATED
    text = book_text(LONG_TEXT, str(data_dir))
    start = len(text) // 2
    return [text[start + i * n_chars : start + (i + 1) * n_chars] for i in range(n)], LONG_TEXT


def profile_texts(n: int, T: int, data_dir) -> tuple[list[str], str]:
    """The sink profile's n texts and where they came from: LAMBADA passages from the data directory,
    or generated filler without one (3 words a token: room to spare for T tokens)."""
    if data_dir is None:
        return generated_texts(n, 3 * T), GENERATED
    return read_texts(data_file(PROFILE_TEXTS, data_dir), "text", n), PROFILE_TEXTS
