"""What the board tests share: a small board, hostile strings, records written to disk, a doctored record,
the CLI in-process and a snapshot of a folder. Records come from sinkbench.testing.records (valid)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from sinkbench.testing.records import record, resummarised
from sinkbench.record.format import dumps
from sinkbench.record.link import sink_correctness_link
from sinkbench.record.stats import proportion


def write(data: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(data), encoding="utf-8")
    return path


def write_json(data, path: Path) -> Path:
    """Plain ASCII JSON (a lone surrogate travels as \\ud800), for records the board must refuse."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def file_board(board: Path, options_list) -> Path:
    """Records made from each options dict, filed where the board expects them."""
    from sinkbench.board.store import submission_path

    for options in options_list:
        r = record(**options)
        write(r, board / submission_path(r))
    return board


# A small board: two families, releases in order, one without a <bos> (SmolLM-like), and a record of the
# standard suite (a second suite on the board).
BOARD = (
    dict(family="gemma", model="gemma-2b", revision="a1", release_date="2024-02-21", score=0.55,
         bos_dependence=0.6, knockout_dependence=0.7, alpha_level=0.7, seed=1),
    dict(family="gemma", model="gemma-7b", revision="b1", release_date="2024-02-21", score=0.68,
         bos_dependence=0.5, knockout_dependence=0.6, alpha_level=0.8, seed=2),
    dict(family="gemma", model="gemma-7b", revision="b2", release_date="2024-06-27", score=0.70,
         bos_dependence=0.45, knockout_dependence=0.55, alpha_level=0.75, seed=3),
    dict(family="smollm2", model="SmolLM2-135M", revision="c1", release_date="2024-11-01", score=0.42,
         bos_dependence=0.0, knockout_dependence=0.3, alpha_level=0.4, adds_bos=False, seed=4, growth=0.3),
    dict(family="smollm2", model="SmolLM2-360M", revision="d1", release_date="2024-11-01", score=0.48,
         knockout_dependence=0.35, alpha_level=0.5, adds_bos=False, seed=5, growth=0.25),
)
STANDARD = dict(family="qwen2", model="Qwen2.5-0.5B", revision="q1", release_date="2024-09-19", suite="standard",
                score=0.6, knockout_dependence=0.1, adds_bos=False, seed=6, docs=30, sweep_docs=12, max_context=8192)


# A record whose family, model and revision hold everything that breaks Markdown, CSV, HTML and YAML.
HOSTILE_NAME = 'x|y\n<script>window.pwned=1</script> "q" \'s\' & =cmd'
HOSTILE = dict(family='fam"<i>|ly', model=HOSTILE_NAME, revision="r|1<b>", release_date="2024-05-05", score=0.5,
               seed=9)
HOSTILE_TEXT = '<script>window.pwned=2</script><img src=x onerror="window.pwned=3"> & "q"'


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under `folder`, by relative path."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(Path(folder).rglob("*"))}


def run_cli(argv: list) -> int:
    """sinkbench's main() in this process: its parser, its one-line errors and exit codes."""
    from sinkbench import cli

    return cli.main([str(a) for a in argv])


def degraded(data: dict, share: float) -> dict:
    """The record with `share` of each accuracy task's right documents turned wrong under every condition
    (the first ones, by position: the same documents everywhere); scores, links and summary recomputed."""
    changed = copy.deepcopy(data)
    accuracy = {name for name, task in changed["tasks"].items() if task["kind"] == "accuracy"}
    for condition in changed["conditions"]:
        for task in accuracy & set(condition["outcomes"]):
            outcome = condition["outcomes"][task]
            right = [i for i, value in enumerate(outcome["acc"]) if value == 1]
            for i in right[: round(share * len(right))]:
                outcome["acc"][i] = 0
            condition["scores"][task]["acc"] = proportion(outcome["acc"])
            if task in condition["link"]:
                condition["link"][task] = {"metric": "acc", **sink_correctness_link(
                    dict(enumerate(outcome["acc"])), dict(enumerate(outcome["alpha"])))}
    changed["summary"] = resummarised(changed)
    return changed


def with_identity(data: dict, **model) -> dict:
    """The record under another identity (revision, release_date, name, ...): its numbers do not depend on it."""
    changed = copy.deepcopy(data)
    changed["model"].update(model)
    return changed


def with_heads(data: dict, changes: dict[tuple[int, int], float]) -> dict:
    """The record with profile α of some (layer, head) set to new values; the changes must sum to the old ones,
    so that every mean the record states stays true."""
    changed = copy.deepcopy(data)
    profile = changed["profile"]
    table = profile["alpha_by_head"]
    assert abs(sum(changes.values()) - sum(table[layer][head] for layer, head in changes)) < 1e-9
    for (layer, head), value in changes.items():
        table[layer][head] = value
    profile["alpha_by_layer"] = [sum(row) / len(row) for row in table]
    return changed


def rehashed(data: dict, task: str) -> dict:
    """The record with its first document of `task` holding other content (another hash): no longer pairable."""
    changed = copy.deepcopy(data)
    hashes = changed["tasks"][task]["documents"]["hashes"]
    hashes[0] = "0" * len(hashes[0]) if hashes[0] != "0" * len(hashes[0]) else "1" * len(hashes[0])
    return changed


def rename_task(data: dict, old: str, new: str) -> dict:
    """The record with one task renamed everywhere it appears (for the escaping tests: no board takes it)."""
    changed = copy.deepcopy(data)
    changed["tasks"] = {new if k == old else k: v for k, v in changed["tasks"].items()}
    hashes = changed["provenance"]["task_hashes"]
    changed["provenance"]["task_hashes"] = {new if k == old else k: v for k, v in hashes.items()}
    for condition in changed["conditions"]:
        condition["tasks"] = [new if t == old else t for t in condition["tasks"]]
        for part in ("scores", "outcomes", "sinks", "link", "skipped"):
            condition[part] = {new if k == old else k: v for k, v in condition[part].items()}
    return changed


__all__ = ["BOARD", "STANDARD", "HOSTILE", "HOSTILE_NAME", "HOSTILE_TEXT", "degraded", "file_board", "record",
           "rehashed", "rename_task", "run_cli", "snapshot", "with_heads", "with_identity", "write", "write_json"]
