"""The `sinkbench` command line: probe a model's sinks, run lm-eval with the sinkbench backend."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sinkbench.errors import SinkbenchError


def read_texts(path: Path, field: str, n: int) -> list[str]:
    """The first n texts of a JSONL file (one object per line, text under `field`)."""
    if not path.is_file():
        raise SinkbenchError(f"data file not found: {path}")
    texts = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if len(texts) >= n:
                break
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise SinkbenchError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict) or field not in row:
                raise SinkbenchError(f"{path}:{number}: no '{field}' field (choose one with --field)")
            if not isinstance(row[field], str) or not row[field].strip():
                raise SinkbenchError(f"{path}:{number}: empty text in '{field}'")
            texts.append(row[field])
    if not texts:
        raise SinkbenchError(f"{path}: no texts found")
    return texts


def cmd_probe(args: argparse.Namespace) -> int:
    from sinkbench.measure.models import load_model
    from sinkbench.files import write_json_atomic
    from sinkbench.measure.profile import ProbeConfig, render, run_probe, save_heatmap

    if args.T < 2 or args.n < 1:
        raise SinkbenchError("--T must be >= 2 and --n >= 1")
    texts = read_texts(Path(args.data), args.field, args.n)
    config = ProbeConfig(T=args.T, n=args.n, bos=args.bos, batch_size=args.batch_size, first_k=args.first_k)
    loaded = load_model(args.model, dtype=args.dtype, trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle)
    profile = run_probe(loaded, texts, config, progress=not args.quiet)
    profile["data"] = {"path": str(args.data), "field": args.field}
    out = Path(args.out)
    write_json_atomic(profile, out / "profile.json")
    save_heatmap(profile, out / "alpha_heatmap.png")
    print(render(profile))
    print(f"wrote {out / 'profile.json'} and {out / 'alpha_heatmap.png'}")
    return 0


def _csv(kind):
    def parse(text: str):
        try:
            return [kind(part) for part in text.split(",") if part != ""]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got '{text}'") from None

    return parse


def cmd_run(args: argparse.Namespace) -> int:
    from sinkbench.record.format import read_record
    from sinkbench.record.report import render_record
    from sinkbench.run.runner import RunConfig, run
    from sinkbench.grid.suite import custom_grid, get_suite

    suite = get_suite(args.suite)
    if args.tasks:  # a suite's group name stands for its tasks
        from sinkbench.grid.suite import SUITES

        groups = {f"sinkbench_{name}": [t.name for t in s.tasks] for name, s in SUITES.items()}
        args.tasks = list(dict.fromkeys(t for name in args.tasks for t in groups.get(name, [name])))
    cells = custom_grid(suite, args.tasks, args.bos, args.prefix, args.window, args.sinks, args.knockout)
    if args.release_date is not None:
        _check_date(args.release_date)
    out = Path(args.out) if args.out else Path("runs") / args.model.replace("/", "__").removesuffix(".gguf")
    config = RunConfig(
        model=args.model, out=out, suite=suite.name, cells=cells, limit=args.limit, batch_size=args.batch_size,
        data_dir=args.data_dir, include_path=Path(args.include_path) if args.include_path else None,
        device=args.device, dtype=args.dtype, family=args.family, release_date=args.release_date, force=args.force,
        command=("sinkbench", *args.argv),
    )
    try:
        path = run(config, verbose=args.verbose)
    except KeyboardInterrupt:
        print(f"\nsinkbench: stopped. Finished conditions are saved in {out}/; "
              "run the same command again to continue where it stopped.", file=sys.stderr)
        return 130
    if path is None:  # a rank other than 0 of a data-parallel run: rank 0 reports
        return 0
    record = read_record(path)
    print()
    print(render_record(record))
    print(f"\nrecord: {path} (lm-eval results and per-request sink metrics beside it)")
    return 0


def _check_date(text: str) -> None:
    import datetime

    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        raise SinkbenchError(f"--release-date must be YYYY-MM-DD, got '{text}'") from None


def cmd_validate(args: argparse.Namespace) -> int:
    from sinkbench.record.format import read_record
    from sinkbench.record.validate import problems

    found = problems(read_record(Path(args.file)))
    if found:
        more = f" (and {len(found) - 1} more problems)" if len(found) > 1 else ""
        raise SinkbenchError(f"{args.file}: {found[0]}{more}")
    print(f"{args.file}: valid sinkbench record")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from sinkbench.run.runner import default_tasks_dir
    from sinkbench.harness.tasklist import describe_tasks

    print(describe_tasks(default_tasks_dir()), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sinkbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    probe = sub.add_parser("probe", help="measure a model's attention sinks over a set of texts")
    probe.add_argument("--model", required=True, help="alias (smollm2-135m, gemma3-270m), hub id, folder or .gguf file")
    probe.add_argument("--data", required=True, help="JSONL file, one text per line")
    probe.add_argument("--field", default="text", help="JSON field holding the text (default: text)")
    probe.add_argument("--T", type=int, default=64, help="tokens per sequence, <bos> included (default 64, as Gu et al.)")
    probe.add_argument("--n", type=int, default=100, help="number of sequences (default 100, as Gu et al.)")
    probe.add_argument("--bos", default="keep", help="keep | drop | double | replace:<token> (default keep)")
    probe.add_argument("--first-k", type=int, default=4, help="report attention mass on the first k tokens (default 4)")
    probe.add_argument("--batch-size", type=int, default=8)
    probe.add_argument("--dtype", default="float32")
    probe.add_argument("--out", required=True, help="output folder for profile.json and alpha_heatmap.png")
    probe.add_argument("--trust-remote-code", action="store_true", help="allow a model's own modelling code to run")
    probe.add_argument("--allow-pickle", action="store_true", help="allow pickle (.bin) weights")
    probe.add_argument("--quiet", action="store_true", help="no progress bar")
    probe.set_defaults(func=cmd_probe)

    run = sub.add_parser("run", help="run a suite's condition grid and sink profile into one record (the main job)",
                         description="Run a suite's condition grid and the sink profile with one model load, and "
                                     "write record.json. A stopped run continues when started again.")
    run.add_argument("--model", default="smollm2-135m", help="alias, hub id, folder or .gguf file (default smollm2-135m)")
    run.add_argument("--suite", default="quick", help="quick (about 8 min for SmolLM2 on 2 CPU cores) or standard (default quick)")
    run.add_argument("--tasks", type=_csv(str), default=None,
                     help="comma-separated tasks: run only these (see `sinkbench tasks`); default: the suite's")
    run.add_argument("--bos", type=_csv(str), default=None, help="your own grid: comma-separated <bos> modes "
                     "(keep, drop, double, replace:<token>)")
    run.add_argument("--prefix", type=_csv(int), default=None, help="your own grid: comma-separated stress prefix lengths")
    run.add_argument("--window", type=int, default=None, help="your own grid: attend only to the last W keys")
    run.add_argument("--sinks", type=_csv(int), default=None,
                     help="with --window: comma-separated counts of first keys always kept (StreamingLLM: 0,4)")
    run.add_argument("--knockout", default=None, help="your own grid: layers where attention to the first token is masked: all, 3, 0-3, 0+2")
    run.add_argument("--limit", type=int, default=None, help="documents per task (smoke runs; the record says so)")
    run.add_argument("--batch-size", type=int, default=8)
    run.add_argument("--data-dir", default=None, help="benchmark data directory (default: $SINKBENCH_DATA_DIR, "
                     "else ../shared/data beside a checkout; without one, real tasks are skipped)")
    run.add_argument("--include-path", default=None, help="task configs folder (default: sinkbench's tasks)")
    run.add_argument("--out", default=None, help="results folder (default runs/<model>)")
    run.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    run.add_argument("--dtype", default="float32", help="float32, bfloat16, float16 or auto (default float32)")
    run.add_argument("--family", default=None, help="model family on the board (default: the alias's, else config.model_type)")
    run.add_argument("--release-date", default=None, help="YYYY-MM-DD: orders releases in `sinkbench board track`")
    run.add_argument("--force", action="store_true", help="recompute everything, replacing the folder's earlier results")
    run.add_argument("-v", "--verbose", action="store_true", help="show lm-eval's and transformers' own messages")
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check a record: schema, value ranges, counts, summary columns")
    validate.add_argument("file", help="a record.json")
    validate.set_defaults(func=cmd_validate)

    tasks = sub.add_parser("tasks", help="list sinkbench's tasks and groups")
    tasks.set_defaults(func=cmd_tasks)

    from sinkbench.board.cli import add_commands

    add_commands(sub)  # submit, board build/track/compare, export

    lm_eval = sub.add_parser("lm-eval", help="run lm-evaluation-harness with the sinkbench backend registered", add_help=False)
    lm_eval.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["lm-eval"]:
        from sinkbench.lm_eval_cli import main as lm_eval_main

        return lm_eval_main(argv[1:])
    args = build_parser().parse_args(argv)
    args.argv = list(argv)
    try:
        return args.func(args)
    except SinkbenchError as err:
        print(f"sinkbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nsinkbench: stopped", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
