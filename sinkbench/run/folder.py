"""The results folder of `sinkbench run`: what it belongs to, its finished parts, and nothing left behind.

It holds `run.json` (the manifest: model, suite, settings), one `cond-<condition>.json` per
finished condition, `profile.json`, per-request sidecars and, at the end, `record.json`. A folder
that belongs to another model, suite, setting or sinkbench version is refused (`--force` starts
it afresh); a folder whose run finished nothing is reused, and removed again if the run fails.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from sinkbench.errors import SinkbenchError
from sinkbench.files import write_json_atomic

MANIFEST = "run.json"
PROFILE = "profile.json"
RECORD = "record.json"
OUR_FILES = (MANIFEST, PROFILE, RECORD, "cond-*.json", "cond-*.sinks.jsonl*")


def rank() -> int:
    """This process's rank under torchrun / accelerate launch (0 alone)."""
    return int(os.environ.get("RANK", "0"))


class ResultsFolder:
    """One run's folder. Only rank 0 checks and writes it: other ranks would race it."""

    def __init__(self, path: Path, manifest: dict):
        self.path = Path(path)
        self.wanted = manifest
        self.created = False  # made by this run (and so removed if the run leaves nothing in it)

    def prepare(self, force: bool) -> None:
        """Make the folder ready: writable, and empty or holding this same run's parts."""
        self.created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path):  # one per process: ranks check at the same time
                pass
        except OSError as err:
            raise SinkbenchError(f"cannot write results to {self.path}: {err.strerror or err}") from None
        if rank() != 0:
            return
        existing = self.path / MANIFEST
        if force:
            for path in self.ours():
                path.unlink()
        elif existing.is_file():
            try:
                held = json.loads(existing.read_text())
            except ValueError:
                raise SinkbenchError(f"{existing} is damaged; pass --force to start this folder afresh") from None
            differ = [k for k in self.wanted if held.get(k) != self.wanted[k]]
            if differ and self.finished():
                what = ", ".join(f"{k} {held.get(k)!r} (now {self.wanted[k]!r})" for k in differ)
                raise SinkbenchError(f"{self.path} holds results of another run: {what}. "
                                     "Use another --out, or --force to replace them")
            if not differ:
                return  # with the weights' identity, once a model was loaded for it
        elif any(self.path.glob("*.json")):
            raise SinkbenchError(f"{self.path} holds files that are not a sinkbench run's; use another --out, or --force")
        write_json_atomic(self.wanted, existing)

    def ours(self) -> list[Path]:
        return sorted({p for pattern in OUR_FILES for p in self.path.glob(pattern)})

    def finished(self) -> bool:
        """Whether any part of a run is saved here (a condition or the profile)."""
        return any(self.path.glob("cond-*.json")) or (self.path / PROFILE).exists()

    def clean_up_after_failure(self) -> None:
        """A run that failed before finishing anything leaves nothing behind: not its manifest,
        not a sidecar, not the folder it made."""
        if rank() != 0 or self.finished():
            return
        for path in self.ours():
            path.unlink(missing_ok=True)
        if self.created:
            try:
                self.path.rmdir()
            except OSError:
                pass  # something else is in it now: leave it

    def check_identity(self, identity: dict, model: str) -> None:
        """A folder made with other weights under the same name is not this model's."""
        if rank() != 0:
            return
        path = self.path / MANIFEST
        manifest = json.loads(path.read_text())
        if "identity" in manifest and manifest["identity"] != identity:
            raise SinkbenchError(f"{self.path} holds results of other weights under the name {model}; "
                                 "use another --out, or --force")
        if "identity" not in manifest:
            write_json_atomic({**manifest, "identity": identity}, path)

    def load(self, name: str) -> dict | None:
        """A saved part, or None when it is missing or damaged (a damaged part is recomputed)."""
        path = self.path / name
        try:
            return json.loads(path.read_text()) if path.is_file() else None
        except (OSError, ValueError):
            return None

    def save(self, name: str, document: dict) -> None:
        if rank() == 0:
            write_json_atomic(document, self.path / name)
