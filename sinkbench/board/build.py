"""`sinkbench board build`: every submission into README.md, leaderboard.csv and site/index.html.

The same submissions always give byte-identical files: rows are ranked deterministically, numbers
are printed with fixed precision, and nothing about the build itself (time, host, version) is written.
"""

from __future__ import annotations

from pathlib import Path

from sinkbench.board import site, table
from sinkbench.board.store import load_board, write_output

OUTPUTS = ("README.md", "leaderboard.csv", "site/index.html")


def build(board: Path) -> list[Path]:
    """Check every submission (as submit does) and write the outputs; the paths written or already current."""
    board = Path(board)
    submissions = load_board(board)
    frame = table.frame(submissions)
    texts = {
        "README.md": table.markdown(frame),
        "leaderboard.csv": table.csv(frame),
        "site/index.html": site.page(submissions, frame),
    }
    for name, text in texts.items():
        write_output(board / name, text)
    return [board / name for name in OUTPUTS]
