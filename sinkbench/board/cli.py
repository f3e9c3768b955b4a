"""The board's commands on sinkbench's command line: `submit`, `board build|review|track|compare|export`, `export`.

Exit codes: 0 fine; 1 a regression found by `board track` or `board compare` (for a model team's
CI; `board review` only with --fail-on-regression); 2 bad input, including a refused record in
`board review` (sinkbench's main prints the SinkbenchError as one line, no traceback; review prints
one line per refused record).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from sinkbench.board import review, table
from sinkbench.board.build import OUTPUTS, build, outputs_of, write_outputs
from sinkbench.board.cache import CheckCache
from sinkbench.board.comparison import describe, report, same_shape
from sinkbench.board.export import model_index_yaml
from sinkbench.board.heatmap import difference_heatmap
from sinkbench.board.store import load_board, read_untrusted, string_problems, submit, summarise, write_output
from sinkbench.board.tidy import tidy_outcomes, write_tidy
from sinkbench.board.track import releases, track
from sinkbench.record.compare import Thresholds, compare
from sinkbench.record.types import Record
from sinkbench.record.validate import problems
from sinkbench.errors import SinkbenchError

BOARD_HELP = "the board folder (default: ./leaderboard)"


def load_record(path: str) -> Record:
    """A record file for compare and export: everything `sinkbench validate` checks, strings bounded."""
    record = read_untrusted(Path(path))
    found = string_problems(record) or problems(record)
    if found:
        raise SinkbenchError(summarise(path, found))
    return Record.from_json(record)


def _thresholds(args: argparse.Namespace):
    for flag, value in (("--max-dependence-rise", args.max_dependence_rise), ("--max-score-drop", args.max_score_drop)):
        if not math.isfinite(value):
            raise SinkbenchError(f"{flag} must be a number, got {value}")
    return Thresholds(max_dependence_rise=args.max_dependence_rise, max_score_drop=args.max_score_drop)


def cmd_submit(args: argparse.Namespace) -> int:
    relative = submit(Path(args.record), Path(args.board), replace=args.replace)
    print(f"filed {Path(args.board) / relative}; `sinkbench board build --board {args.board}` updates the board")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    written = build(Path(args.board), CheckCache(None) if args.no_cache else None)
    for name in OUTPUTS:
        print(f"wrote {Path(args.board) / name}")
    pages = len(written) - len(OUTPUTS)
    print(f"wrote {pages} record page{'s' * (pages != 1)} under {Path(args.board) / 'site' / 'models'}")
    return 0


def cmd_track(args: argparse.Namespace) -> int:
    chosen = releases(load_board(Path(args.board)), args.family, args.model)
    text, found = track(chosen, _thresholds(args), unpaired=args.unpaired)
    print(text)
    return 1 if found else 0


def cmd_compare(args: argparse.Namespace) -> int:
    if not 0 <= args.eps <= 1 or args.top < 0:
        raise SinkbenchError("--eps must lie in [0, 1] and --top be >= 0")
    thresholds = _thresholds(args)
    a, b = load_record(args.a), load_record(args.b)
    comparison = compare(a, b, thresholds, unpaired=args.unpaired)  # SinkbenchError: cannot be paired (exit 2)
    alpha_a, alpha_b = a.profile.alpha_by_head, b.profile.alpha_by_head
    if args.svg and not same_shape(alpha_a, alpha_b):
        raise SinkbenchError("--svg: the two records have different layer x head shapes; no heatmap drawn")
    print(report(comparison, a, b, thresholds, eps=args.eps, top=args.top))
    if args.svg:
        write_output(Path(args.svg), difference_heatmap(alpha_a, alpha_b, (describe(a), describe(b)), args.eps))
        print(f"wrote {args.svg}")
    return 1 if comparison.regressions else 0


def _emit(markdown: str, out: str | None) -> None:
    if out:
        write_output(Path(out), markdown)
        print(f"wrote {out}")
    else:
        print(markdown, end="")


def cmd_review(args: argparse.Namespace) -> int:
    board, thresholds, cache = Path(args.board), _thresholds(args), CheckCache.default()
    changes = review.find_changes(board, args.base, args.records)
    refused = review.check_changed(board, changes, cache)
    if refused:
        for line in refused:
            print(f"sinkbench: error: {line}", file=sys.stderr)
        _emit(review.refused_markdown(changes, refused), args.out)
        return 2
    try:
        submissions = load_board(board, cache)
        texts = outputs_of(submissions, board, cache)
    except SinkbenchError as err:
        _emit(review.failed_build_markdown(changes, err), args.out)
        raise
    current = all(text is None or ((board / name).is_file() and (board / name).read_bytes() == text.encode("utf-8"))
                  for name, text in texts.items())
    write_outputs(board, texts)
    markdown, regressed = review.markdown(changes, submissions, thresholds, current)
    _emit(markdown, args.out)
    return 1 if args.fail_on_regression and regressed else 0


def cmd_board_export(args: argparse.Namespace) -> int:
    written = write_tidy(tidy_outcomes(load_board(Path(args.board))), Path(args.tidy))
    print(f"wrote {args.tidy} ({written}): every record's per-document outcomes, one row each")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    print(model_index_yaml(load_record(args.model_index), args.name), end="")
    return 0


def _add_thresholds(parser: argparse.ArgumentParser) -> None:
    defaults = Thresholds()
    parser.add_argument("--max-dependence-rise", type=float, default=defaults.max_dependence_rise, metavar="X",
                        help="largest allowed rise of <bos> or knockout dependence, absolute "
                             f"(default {defaults.max_dependence_rise:g})")
    parser.add_argument("--max-score-drop", type=float, default=defaults.max_score_drop, metavar="X",
                        help=f"largest allowed fall of the suite score, absolute (default {defaults.max_score_drop:g})")
    parser.add_argument("--unpaired", action="store_true",
                        help="compare as independent samples (records whose documents differ); labelled as such")


def add_commands(subparsers) -> None:
    """Add `submit`, `board` (build, track, compare) and `export` to sinkbench's subcommands."""
    submit = subparsers.add_parser(
        "submit", help="check a record and file it on the leaderboard",
        description="Validate a record (schema, numbers, complete suite grid, the board's suite version) and file it "
                    "as <board>/submissions/<family>/<model>/<revision>.json (<revision>.<suite>.json for a suite other "
                    "than quick). A refused record changes nothing.")
    submit.add_argument("record", help="a record .json written by `sinkbench run`")
    submit.add_argument("--replace", action="store_true", help="overwrite this model and revision if already filed")
    submit.add_argument("--board", default="leaderboard", help=BOARD_HELP)
    submit.set_defaults(func=cmd_submit)

    board = subparsers.add_parser("board", help="build the leaderboard, review a change, track a family's releases, "
                                                "compare two records, export per-document outcomes")
    actions = board.add_subparsers(dest="board_command", required=True, metavar="{build,review,track,compare,export}")

    build = actions.add_parser("build", help="write README.md, leaderboard.csv, board.json, site/index.html and a page "
                                             "per record from the submissions")
    build.add_argument("--board", default="leaderboard", help=BOARD_HELP)
    build.add_argument("--no-cache", action="store_true",
                       help="check every record again (by default a record file is checked once per content and "
                            "sinkbench version; the cache is $SINKBENCH_CACHE_DIR or ~/.cache/sinkbench)")
    build.set_defaults(func=cmd_build)

    review_ = actions.add_parser(
        "review", help="check the records a change adds or alters, rebuild, and write Markdown for a pull request",
        description="For the records a change (a pull request) adds or alters: check each in full (exit 2, one line "
                    "per refused record), rebuild the board, and write Markdown: each record's rank band and its "
                    "comparison with the release before it (the same model's, else its family's), or, for a "
                    "family's first record, the records nearest to it. Exit 0 otherwise (a regression is reported, "
                    "not failed, unless --fail-on-regression).")
    review_.add_argument("records", nargs="*", help="the changed record files (instead of --base)")
    review_.add_argument("--base", default=None, metavar="REF|FOLDER",
                         help="what the change is against: a git ref (the diff from its fork point with HEAD, the "
                              "working tree and untracked files included) or a folder holding the board before")
    review_.add_argument("--board", default="leaderboard", help=BOARD_HELP)
    review_.add_argument("--out", default=None, metavar="FILE", help="write the Markdown here (default: stdout)")
    review_.add_argument("--fail-on-regression", action="store_true",
                         help="exit 1 when a changed record regresses against its previous release")
    _add_thresholds(review_)
    review_.set_defaults(func=cmd_review)

    board_export = actions.add_parser(
        "export", help="every record's per-document outcomes in long form (CSV, or Parquet with pyarrow)",
        description="One row per record, condition, task, metric and document: model, family, revision, suite, "
                    "suite_version, task, condition, doc_id, doc_hash, metric, value. For pandas and DuckDB.")
    board_export.add_argument("--tidy", required=True, metavar="FILE",
                              help="the file to write: .csv, or .parquet (needs pyarrow)")
    board_export.add_argument("--board", default="leaderboard", help=BOARD_HELP)
    board_export.set_defaults(func=cmd_board_export)

    track = actions.add_parser(
        "track", help="a family's releases in order with each column's change; exit 1 if the latest regresses",
        description="List a family's releases (per suite; release date, then revision) with each summary column's "
                    "change from the release before, its paired 95% interval, MDE and verdict. Exit 1 when the "
                    "latest release regresses against the one before it, 2 when two releases cannot be paired.")
    track.add_argument("family", help="the family, as records name it (model.family)")
    track.add_argument("--model", default=None, help="only this model of the family (model.name)")
    track.add_argument("--board", default="leaderboard", help=BOARD_HELP)
    _add_thresholds(track)
    track.set_defaults(func=cmd_track)

    compare = actions.add_parser(
        "compare", help="two records column by column and head by head; exit 1 if B regresses against A",
        description="Compare record B (new) with record A (old) on the documents both hold: every summary column's "
                    "change with its paired 95% interval, MDE and verdict, McNemar's test per accuracy task, and "
                    "the layer x head α difference (which heads gained or lost their sink). Exit 1 when B regresses "
                    "against A (only within one family), 2 on bad input or records that cannot be paired.")
    compare.add_argument("a", help="the old record (.json)")
    compare.add_argument("b", help="the new record (.json)")
    _add_thresholds(compare)
    compare.add_argument("--eps", type=float, default=0.3, help="α above which a head counts as a sink (default 0.3)")
    compare.add_argument("--top", type=int, default=10, help="how many of the largest head changes to list (default 10)")
    compare.add_argument("--svg", default=None, metavar="FILE", help="also draw the α difference as a diverging heatmap")
    compare.set_defaults(func=cmd_compare)

    export = subparsers.add_parser("export", help="print a record's summary columns for a Hugging Face model card")
    formats = export.add_mutually_exclusive_group(required=True)
    formats.add_argument("--model-index", metavar="RECORD", help="as model-index YAML (for the card's metadata block)")
    export.add_argument("--name", default=None, help="the model-index name (default: the record's model name)")
    export.set_defaults(func=cmd_export)
