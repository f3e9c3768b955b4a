"""`board export --tidy FILE`: every record's per-document outcomes in long form, for pandas and DuckDB.

One row per (record, condition, task, metric, document): model, family, revision, suite,
suite_version, task, condition, doc_id, doc_hash, metric, value. `metric` is the name of the
per-document outcome as the record keeps it (`acc`, `acc_norm`: 0 or 1; `loglik`: the document's
log-likelihood; `alpha`, `text_start`: its mean attention to the first token and to the text's own
first token). A condition identical to an earlier one carries that one's outcomes under its own
name, as the record does. Rows follow the board's files (by path), then each record's order.

    import duckdb; duckdb.sql("select model, condition, avg(value) from 'outcomes.parquet' "
                              "where metric = 'acc' group by all")
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from sinkbench.board.store import Submission
from sinkbench.board.table import spreadsheet_safe
from sinkbench.errors import SinkbenchError

COLUMNS = ("model", "family", "revision", "suite", "suite_version", "task", "condition", "doc_id", "doc_hash",
           "metric", "value")
FORMATS = (".csv", ".parquet")


def _blocks(s: Submission):
    """(condition, task, metric, ids, hashes, values) per per-document list of one record."""
    for condition in s.record.conditions:
        for task, outcome in condition.outcomes.items():
            documents = s.record.tasks[task].documents
            n = outcome.n  # the first n documents of the task's list were scored (validate checks it)
            hashes = documents.hashes or [None] * n
            for metric, values in sorted(outcome.to_json().items()):  # by name, as a record's file lists them
                if metric != "n":
                    yield condition.name, task, metric, documents.ids[:n], hashes[:n], values


def tidy_outcomes(submissions: list[Submission]) -> pd.DataFrame:
    """Every per-document outcome of every record, one row each (columns: COLUMNS)."""
    parts = []
    for s in sorted(submissions, key=lambda s: str(s.path)):
        for condition, task, metric, ids, hashes, values in _blocks(s):
            parts.append(pd.DataFrame({
                "model": s.name, "family": s.family, "revision": s.revision, "suite": s.suite[0],
                "suite_version": s.suite[1], "task": task, "condition": condition, "doc_id": ids,
                "doc_hash": hashes, "metric": metric, "value": pd.Series(values, dtype="float64")}))
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype="float64" if name == "value" else "int64" if name == "doc_id"
                                             else "object") for name in COLUMNS})
    table = pd.concat(parts, ignore_index=True)
    return table.astype({"doc_id": "int64"})


def pyarrow_installed() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def write_tidy(table: pd.DataFrame, path: Path) -> str:
    """Write the table as CSV or Parquet, by the file's suffix; the format written."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise SinkbenchError(f"{path}: the tidy export writes .csv or .parquet, not '{suffix or 'no suffix'}'")
    if suffix == ".parquet" and not pyarrow_installed():
        raise SinkbenchError("writing Parquet needs pyarrow (pip install pyarrow); a .csv file needs nothing more")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":  # names defused for spreadsheets, as in leaderboard.csv; Parquet keeps them exact
        safe = table.assign(**{name: table[name].map(spreadsheet_safe) for name in ("model", "family", "revision")})
        safe.to_csv(path, index=False, lineterminator="\n")
    else:
        table.to_parquet(path, index=False, engine="pyarrow")
    return suffix[1:]
