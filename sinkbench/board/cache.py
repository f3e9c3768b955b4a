"""Work done once per content: a record file whose exact bytes passed every board check is not checked again, and
a record's page whose inputs did not change is not drawn again.

Checking a record recomputes every aggregate from its per-document outcomes, and drawing its page
makes a dozen charts: on a board of 500 records (bench/board_scale.py) the two are almost all of a
build, although almost every record is the one of the build before. So a pass is remembered as an
empty file named by the sha256 of

    the record file's sha256 + sinkbench's version + the record schema's version + sinkbench's code

where "sinkbench's code" is a hash of the package's own files (code, schemas, page templates): a
sinkbench whose checks or pages changed (a new release, or an edit in a checkout) does everything
again. Only passes are kept; a refused record is checked, and refused, every time. A page is kept
when the same key with the page's label names a file holding the sha256 of the page on disk (a page
edited or removed by hand is drawn again).

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
CODE = (".py", ".json", ".j2", ".css", ".js")  # what checks a record or draws its page
VALIDATED, PAGES, VERDICTS = "validated", "pages", "verdicts"


@lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """sinkbench's version, the schema's and a hash of the package's code, schema and template files."""
    digest = hashlib.sha256(f"sinkbench {sinkbench.__version__}\0schema {SCHEMA_VERSION}\0".encode())
    for path in sorted(p for p in PACKAGE.rglob("*") if p.suffix in CODE and p.is_file()):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def default_folder() -> Path:
    if os.environ.get("SINKBENCH_CACHE_DIR"):
        return Path(os.environ["SINKBENCH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sinkbench"


class CheckCache:
    """Which record contents passed the board's checks, and which pages were drawn from what, under this
    sinkbench. folder=None: a cache that remembers nothing (`board build --no-cache`)."""

    def __init__(self, folder: Path | None):
        self.folder = None if folder is None else Path(folder)

    @classmethod
    def default(cls) -> "CheckCache":
        return cls(default_folder())

    def _file(self, kind: str, *parts: str) -> Path | None:
        if self.folder is None:
            return None
        key = hashlib.sha256("\0".join((code_fingerprint(), *parts)).encode("utf-8")).hexdigest()
        return self.folder / kind / key

    def _write(self, path: Path | None, data: bytes) -> None:
        if path is None:
            return
        try:
            write_bytes_atomic(data, path)
        except OSError:
            pass  # a read-only or full cache costs the next build its time, never its result

    def passed(self, digest: str) -> bool:
        """Whether a record file of this content_digest passed the checks before."""
        path = self._file(VALIDATED, digest)
        return path is not None and path.is_file()

    def remember(self, digest: str) -> None:
        self._write(self._file(VALIDATED, digest), b"")

    def page_current(self, digest: str, label: str, page: Path) -> bool:
        """Whether `page` holds what this record (by content_digest) and label drew before."""
        path = self._file(PAGES, digest, label)
        if path is None or not path.is_file() or not page.is_file():
            return False
        return path.read_bytes() == content_digest(page.read_bytes()).encode("ascii")

    def remember_page(self, digest: str, label: str, text: str) -> None:
        self._write(self._file(PAGES, digest, label), content_digest(text.encode("utf-8")).encode("ascii"))

    def verdict(self, before: str, after: str, rule: str) -> list[str] | None | bool:
        """The columns on which the record of digest `after` regressed against `before` under `rule` (a
        Thresholds description), as found before: a list, None for a pair that could not be paired, False when
        not known."""
        path = self._file(VERDICTS, before, after, rule)
        if path is None or not path.is_file():
            return False
        text = path.read_text(encoding="utf-8")
        return None if text == "unpaired" else [name for name in text.split(",") if name]

    def remember_verdict(self, before: str, after: str, rule: str, columns: list[str] | None) -> None:
        text = "unpaired" if columns is None else ",".join(columns)
        self._write(self._file(VERDICTS, before, after, rule), text.encode("utf-8"))
