"""Records checked once per content: a record file whose exact bytes passed every board check is not checked again.

Checking a record recomputes every aggregate from its per-document outcomes: on a board of 500
records that is most of a build (bench/board_scale.py), although almost every record is the one
checked in the build before. A pass is remembered as an empty file named by the sha256 of

    the record file's bytes + sinkbench's version + the record schema's version + the checking code

where "the checking code" is a hash of sinkbench's own .py and .json files: a sinkbench whose
checks changed (a new release, or an edit in a checkout) checks every record again. Only passes
are kept; a refused record is checked, and refused, every time.

The cache lives outside the board (`$SINKBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/sinkbench`, else
`~/.cache/sinkbench`), so it never shows in the board's git history, and nothing a pull request adds
to the board can claim that its own record passed.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import sinkbench
from sinkbench.files import write_bytes_atomic
from sinkbench.record.format import SCHEMA_VERSION

PACKAGE = Path(sinkbench.__file__).resolve().parent
VALIDATED = "validated"


@lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """sinkbench's version, the schema's and a hash of every .py and .json file of the package."""
    digest = hashlib.sha256(f"sinkbench {sinkbench.__version__}\0schema {SCHEMA_VERSION}\0".encode())
    for path in sorted(p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".json") and p.is_file()):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def default_folder() -> Path:
    if os.environ.get("SINKBENCH_CACHE_DIR"):
        return Path(os.environ["SINKBENCH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sinkbench"


class CheckCache:
    """Which record contents passed the board's checks under this sinkbench. folder=None: a cache that
    remembers nothing (`board build --no-cache`)."""

    def __init__(self, folder: Path | None):
        self.folder = None if folder is None else Path(folder) / VALIDATED

    @classmethod
    def default(cls) -> "CheckCache":
        return cls(default_folder())

    def _key(self, data: bytes) -> str:
        return hashlib.sha256(code_fingerprint().encode() + b"\0" + data).hexdigest()

    def passed(self, data: bytes) -> bool:
        return self.folder is not None and (self.folder / self._key(data)).is_file()

    def remember(self, data: bytes) -> None:
        if self.folder is None:
            return
        try:
            write_bytes_atomic(b"", self.folder / self._key(data))
        except OSError:
            pass  # a read-only or full cache costs the next build its time, never its result
