"""Where a record's numbers came from: software versions, device, date, command, task configs, data."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import platform
import time
from pathlib import Path

import sinkbench
from sinkbench.data.datadir import KNOWN_FILES, LONG_TEXT, PREFIX_CHAR_OFFSET
from sinkbench.grid.catalog import declaration_of
from sinkbench.harness.scoring import default_max_batch_tokens


def provenance(config, suite, hashes: dict[str, str], documents: list[dict], data_dir, load_seconds=None) -> dict:
    """Versions, device, date, seed, command, limit, suite, task config hashes and data checksums."""
    used_prefix = data_dir is not None and any(d.spec.prefix_length for d in documents)
    return {
        "sinkbench_version": sinkbench.__version__,
        "lm_eval_version": md.version("lm_eval"),
        "transformers_version": md.version("transformers"),
        "torch_version": md.version("torch"),
        "python_version": platform.python_version(),
        "device": config.device,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model_load_s": load_seconds,
        "seed": config.seed,
        "command": list(config.command) or ["sinkbench", "run", "--model", config.model],
        "limit": config.limit,
        "batch_size": config.batch_size,
        "max_batch_tokens": config.max_batch_tokens or default_max_batch_tokens(config.device),
        "suite": {"name": suite.name, "version": suite.version, "custom_grid": config.cells is not None},
        "task_hashes": hashes,
        "data_files": dict(sorted(KNOWN_FILES.items())) if data_dir is not None else {},
        "stress_prefix": {"source": LONG_TEXT, "source_sha256": KNOWN_FILES[LONG_TEXT], "char_offset": PREFIX_CHAR_OFFSET}
        if used_prefix else None,
    }


def task_hashes(index, tasks: list[str]) -> dict[str, str]:
    """sha256 of everything that shapes each task's documents and scoring: its YAML and every YAML it
    includes, its folder's utils.py and, for a declared task (sinkbench.grid.catalog), the source of
    the modules that build its documents and the checksums of the data files it reads."""
    hashes = {}
    for task in tasks:
        yaml_path = getattr(index.get(task), "yaml_path", None)
        if not isinstance(yaml_path, (str, Path)) or not Path(yaml_path).is_file():
            continue
        digest = hashlib.sha256()
        for path in _include_chain(Path(yaml_path)):
            digest.update(path.read_bytes())
        utils = Path(yaml_path).parent / "utils.py"
        if utils.is_file():
            digest.update(utils.read_bytes())
        declaration = declaration_of(task)
        if declaration is not None:
            for source in declaration.source_paths():
                digest.update(Path(source).read_bytes())
            for relative, sha256 in declaration.data_files:
                digest.update(f"{relative} {sha256}\n".encode())
        hashes[task] = digest.hexdigest()
    return hashes


def _include_chain(yaml_path: Path) -> list[Path]:
    """The YAML, the one it includes, that one's, ... (lm-eval's `include:`, a path beside the including file)."""
    chain = [yaml_path]
    while True:
        lines = [line for line in chain[-1].read_text().splitlines() if line.startswith("include:")]
        if not lines:
            return chain
        base = chain[-1].parent / lines[0].split(":", 1)[1].strip()
        if not base.is_file() or base in chain:
            return chain
        chain.append(base)
