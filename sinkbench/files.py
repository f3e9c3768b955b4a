"""Writing result files so that a crash never leaves half of one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_text_atomic(text: str, path: Path) -> None:
    """Write via a temporary file in the same folder and rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json_atomic(data: dict, path: Path) -> None:
    """JSON (two-space indent) written atomically."""
    write_text_atomic(json.dumps(data, indent=2, default=str) + "\n", path)
