"""Base helpers every layer shares: atomic writes, file hashes, field paths in messages."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


def write_bytes_atomic(data: bytes, path: Path, mode: int | None = None) -> None:
    """Write via a temporary file in the same folder and rename, so a crash never leaves half a file.

    mode: the file's permissions (default: what the umask gives a new file; mkstemp alone makes 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_text_atomic(text: str, path: Path, mode: int | None = None) -> None:
    """UTF-8 text, byte for byte (no newline translation), written atomically."""
    write_bytes_atomic(text.encode("utf-8"), path, mode)


def write_json_atomic(data, path: Path) -> None:
    """JSON (two-space indent) written atomically. A value JSON cannot hold (a tensor, a set, NaN)
    is an error, never a string written in its place."""
    write_text_atomic(json.dumps(data, indent=2, allow_nan=False) + "\n", path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def field_path(parts) -> str:
    """A JSON location as a reader writes it: conditions[2].scores.sinkbench_copa.acc."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(record)"
