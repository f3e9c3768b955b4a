"""`board export --tidy`: every record's per-document outcomes in long form, checked on a real board record with
row counts counted by hand from its conditions, tasks and outcome lists."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from board_helpers import run_cli
from sinkbench.board import tidy
from sinkbench.record.format import read_record

ROOT = Path(__file__).resolve().parents[1]
GEMMA = Path("submissions/gemma3/gemma3-270m/a5fd3b62230a.json")

# gemma3-270m's quick record, condition by condition: documents x per-document lists (acc, acc_norm, alpha,
# text_start, loglik as each task keeps them). Accuracy tasks: 700 documents, 120 behind a prefix; pass-key
# 12/12/10/6; the book 12 passages. Without <bos> there is no text_start list where nothing precedes the text.
BASELINE = 700 * 4 + 12 * 3 + 700 * 4 + (12 + 10 + 6 + 12) * 3 + 700 * 4  # arc, book, lambada, pass-key, piqa
PREFIX = 120 * 4 + 120 * 4  # arc, lambada: one sweep length
BOS_DROP = 700 * 3 + 12 * 2 + 700 * 3 + 700 * 3
KNOCKOUT = 700 * 4 * 3
WINDOW = 12 * 3
ROWS = {"bos=keep": BASELINE, "bos=keep,prefix=256": PREFIX, "bos=keep,prefix=1024": PREFIX,
        "bos=keep,prefix=4096": PREFIX, "bos=drop": BOS_DROP, "bos=drop,prefix=4096": PREFIX,
        "bos=keep,knockout=all": KNOCKOUT, "bos=keep,window=256,sinks=0": WINDOW, "bos=keep,window=256,sinks=4": WINDOW}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    board = tmp_path_factory.mktemp("tidy") / "board"
    (board / GEMMA).parent.mkdir(parents=True)
    shutil.copy(ROOT / "leaderboard" / GEMMA, board / GEMMA)
    assert run_cli(["board", "export", "--tidy", board / "outcomes.csv", "--board", board]) == 0
    return board, pd.read_csv(board / "outcomes.csv", dtype={"doc_hash": str})


def test_one_row_per_document_metric_and_condition(exported):
    _, table = exported
    assert list(table.columns) == list(tidy.COLUMNS)
    assert table.groupby("condition").size().to_dict() == ROWS
    assert len(table) == 27192 == sum(ROWS.values())
    assert set(table["model"]) == {"gemma3-270m"} and set(table["revision"]) == {"a5fd3b62230a"}
    assert set(table["suite"]) == {"quick"} and set(table["suite_version"].astype(str)) == {"4.0"}
    assert sorted(table.loc[table["condition"] == "bos=drop", "metric"].unique()) == ["acc", "acc_norm", "alpha", "loglik"]


def test_rows_carry_the_records_ids_hashes_and_values(exported):
    board, table = exported
    data = read_record(board / GEMMA)
    documents = data["tasks"]["sinkbench_lambada_quick"]["documents"]
    outcome = data["conditions"][6]["outcomes"]["sinkbench_lambada_quick"]  # knockout
    rows = table[(table["condition"] == "bos=keep,knockout=all") & (table["task"] == "sinkbench_lambada_quick")
                 & (table["metric"] == "loglik")]
    assert len(rows) == 700
    assert rows["doc_id"].tolist() == documents["ids"] and rows["doc_hash"].tolist() == documents["hashes"]
    assert rows["value"].tolist() == pytest.approx(outcome["loglik"], rel=1e-15)
    # The baseline's LAMBADA accuracy, from the tidy rows, is the record's own score.
    acc = table[(table["condition"] == "bos=keep") & (table["task"] == "sinkbench_lambada_quick")
                & (table["metric"] == "acc")]["value"]
    assert acc.mean() == pytest.approx(data["conditions"][0]["scores"]["sinkbench_lambada_quick"]["acc"]["value"])


def test_parquet_holds_the_same_rows(exported, tmp_path):
    pytest.importorskip("pyarrow")
    board, table = exported
    assert run_cli(["board", "export", "--tidy", tmp_path / "outcomes.parquet", "--board", board]) == 0
    parquet = pd.read_parquet(tmp_path / "outcomes.parquet")
    assert len(parquet) == len(table) and parquet["doc_id"].dtype == "int64"
    pd.testing.assert_frame_equal(parquet.drop(columns="suite_version"), table.drop(columns="suite_version"),
                                  check_dtype=False)


def test_parquet_without_pyarrow_and_other_suffixes_are_one_line(exported, tmp_path, monkeypatch, capsys):
    board, _ = exported
    assert run_cli(["board", "export", "--tidy", tmp_path / "outcomes.xlsx", "--board", board]) == 2
    assert "writes .csv or .parquet" in capsys.readouterr().err
    monkeypatch.setattr(tidy, "pyarrow_installed", lambda: False)
    assert run_cli(["board", "export", "--tidy", tmp_path / "outcomes.parquet", "--board", board]) == 2
    err = capsys.readouterr().err
    assert err == "sinkbench: error: writing Parquet needs pyarrow (pip install pyarrow); a .csv file needs nothing more\n"
    assert not (tmp_path / "outcomes.parquet").exists()


def test_an_empty_board_exports_the_header(tmp_path):
    assert run_cli(["board", "export", "--tidy", tmp_path / "o.csv", "--board", tmp_path]) == 0
    assert (tmp_path / "o.csv").read_text() == ",".join(tidy.COLUMNS) + "\n"
