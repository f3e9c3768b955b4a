"""Where benchmark data lives, and the checks that it is the data we think it is.

Data is never copied into the project: it is read from a data directory the user names
(`--data-dir`, or the SINKBENCH_DATA_DIR environment variable). Every file is checked against
the sha256 recorded in its PROVENANCE.md before use.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sinkbench.errors import SinkbenchError
from sinkbench.files import sha256_file

ENV_VAR = "SINKBENCH_DATA_DIR"

# relative path -> sha256, as recorded in shared/data/PROVENANCE.md
KNOWN_FILES: dict[str, str] = {
    "lambada/lambada_test.jsonl": "4aa8d02cd17c719165fc8a7887fddd641f43fcafa4b1c806ca8abc31fabdb226",
    "piqa/valid.jsonl": "93503cc97c679e459b065c3d13e848282e44b2a25213985bed3e5d458abef72d",
    "piqa/valid-labels.lst": "b4192dc3a2a0363d9d60ccf79800cbbe2f32ebb17726efdde6970e0b8131bceb",
    "arc/arc_challenge_test.llmfoundry.jsonl": "1ae3aeedf1951d881cbd5c2e3a31e78a1993d251479afbe4cb413b6707244636",
    "arc/arc_easy_test.llmfoundry.jsonl": "d2d12e59543acf9a5ef6079634a72b30215e36c2fd4236fff3bc855d287b87f5",
    "arc/arc_challenge_test_answerkey.aristo.jsonl": "1211b934203ac6e8acd46f998ab68bc920cddf8ba662b9648e53ef863e5fca65",
    "arc/arc_easy_test_answerkey.aristo.jsonl": "a4e5d41b44014c62a7c336123c63df1f1ac84f524643227e34878ac387542967",
    "copa/copa-dev.derived-from-bcopa.xml": "1d95b1214c0bea072b08ed784468ebe2697e317e9650909c238bcb8e8ff4042b",
    "winogrande/winogrande_dev.llmfoundry.jsonl": "ea1592526f3bfdd0948ed3acb1b4dfa3f83d23698917118688ee1df7f8d4b8d7",
    "openbookqa/openbookqa_test.llmfoundry.jsonl": "adb2e5c7f8db810ddad4d6b2bf53dcc86dcc545499f7aafcaf42a8e179476c09",
    "boolq/boolq_dev.llmfoundry.jsonl": "454ff101e614370bb1807fe7ebbda6fdb57e794b9662cc1ccae211bf1ff626c8",
    "wikitext2/test.txt": "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
    "gutenberg/pg2600_war_and_peace.albert.txt": "80fc677dca0827d3303b90ba47c67a692f9ffecf697357dd51937b09dfb45c3c",
    "gutenberg/pg2701_moby_dick.utf8.derived.txt": "f6125467864249ec89fdb51f3bb816a99fe756641e7c447ad003794409f7ee19",
}

HOW_TO_GET = (
    "sinkbench reads benchmark data from a data directory laid out as in its PROVENANCE.md "
    f"(e.g. shared/data of the sinkbench workspace); pass --data-dir DIR or set {ENV_VAR}"
)


def resolve_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data directory: explicit argument, then $SINKBENCH_DATA_DIR, then ../shared/data beside a source checkout."""
    candidates = [explicit, os.environ.get(ENV_VAR)]
    checkout_default = Path(__file__).resolve().parents[3] / "shared" / "data"
    for candidate in candidates:
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_dir():
                raise SinkbenchError(f"data directory not found: {path}. {HOW_TO_GET}")
            return path
    if checkout_default.is_dir():
        return checkout_default
    raise SinkbenchError(f"no data directory given. {HOW_TO_GET}")


@lru_cache(maxsize=64)
def _sha256(path: Path, size: int, mtime: float) -> str:
    """sha256_file, once per file version (size and mtime key the cache)."""
    return sha256_file(path)


def data_file(relative: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Path of a known data file, after checking it exists and matches its recorded sha256."""
    if relative not in KNOWN_FILES:
        raise SinkbenchError(f"'{relative}' is not a data file sinkbench knows")
    path = resolve_data_dir(data_dir) / relative
    if not path.is_file():
        raise SinkbenchError(f"data file missing: {path}. {HOW_TO_GET}")
    stat = path.stat()
    actual = _sha256(path, stat.st_size, stat.st_mtime)
    if actual != KNOWN_FILES[relative]:
        raise SinkbenchError(
            f"data file {path} has sha256 {actual[:12]}..., expected {KNOWN_FILES[relative][:12]}... "
            f"(altered or a different version). {HOW_TO_GET}"
        )
    return path


LONG_TEXT = "gutenberg/pg2600_war_and_peace.albert.txt"


@lru_cache(maxsize=4)
def book_text(relative: str = LONG_TEXT, data_dir: str | None = None) -> str:
    """A Project Gutenberg book's body: header/footer lines dropped, hard-wrapped lines joined."""
    raw = data_file(relative, data_dir).read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    lines = [line for line in raw.split("\n") if not line.startswith("# ")]
    body = "\n".join(lines)
    start = re.search(r"\*\*\* ?START OF[^\n]*\n", body)
    end = re.search(r"\*\*\* ?END OF", body)
    body = body[start.end() if start else 0 : end.start() if end else None]
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body)]
    return "\n\n".join(p for p in paragraphs if p)


@dataclass(frozen=True)
class StressTokens:
    """The stress prefix: distractor tokens of a fixed passage, in one model's tokenizer."""

    token_ids: tuple[int, ...]
    source: str  # data file it was cut from
    source_sha256: str
    char_offset: int
    tokens_sha256: str  # sha256 of the token ids, as comma-separated decimal

    def describe(self) -> dict:
        return {
            "n_tokens": len(self.token_ids),
            "source": self.source,
            "source_sha256": self.source_sha256,
            "char_offset": self.char_offset,
            "tokens_sha256": self.tokens_sha256,
        }


# Skip the book's front matter and table of contents; start inside chapter one's prose.
PREFIX_CHAR_OFFSET = 20_000


def stress_prefix(tokenizer, n_tokens: int, data_dir: str | None = None, relative: str = LONG_TEXT) -> StressTokens:
    """The first n_tokens tokens (in this tokenizer) of a fixed passage of a public-domain novel."""
    text = book_text(relative, None if data_dir is None else str(data_dir))
    budget = max(8 * n_tokens, 1000)  # characters: English averages ~4 per token
    passage = text[PREFIX_CHAR_OFFSET : PREFIX_CHAR_OFFSET + budget]
    ids = tokenizer(passage, add_special_tokens=False)["input_ids"][:n_tokens]
    if len(ids) < n_tokens:
        raise SinkbenchError(f"stress prefix: {relative} yields only {len(ids)} tokens, {n_tokens} asked")
    digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()
    return StressTokens(tuple(ids), relative, KNOWN_FILES[relative], PREFIX_CHAR_OFFSET, digest)
