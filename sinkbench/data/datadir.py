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
from sinkbench.grid.catalog import data_files

ENV_VAR = "SINKBENCH_DATA_DIR"

# relative path -> sha256 (as recorded in shared/data/PROVENANCE.md) of every file a declared task reads
KNOWN_FILES: dict[str, str] = data_files()

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
