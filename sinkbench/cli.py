"""The `sinkbench` command line: probe a model's sinks, run a suite into a record, check records, the board.

Nothing imports this module. The commands that drive a model import torch, transformers and
lm-eval when they run (marked "lazy on purpose"): `sinkbench --help`, `validate`, `tasks` and the
board commands need none of them, and loading them takes seconds.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

from sinkbench.board.cli import add_commands
from sinkbench.board.heatmap import alpha_heatmap_file
from sinkbench.errors import SinkbenchError
from sinkbench.files import write_json_atomic, write_text_atomic
from sinkbench.grid.conditions import Condition
from sinkbench.grid.suite import SUITES, ProfilePlan, custom_grid, get_suite
from sinkbench.harness.tasklist import default_tasks_dir, describe_tasks, write_groups
from sinkbench.measure.placement import DEVICE_MAPS, Placement
from sinkbench.record.format import read_record
from sinkbench.record.identity import describe_model
from sinkbench.record.report import render_record
from sinkbench.record.types import Model, Record
from sinkbench.record.validate import problems

DTYPES = ("float32", "bfloat16", "float16", "auto")


def cmd_probe(args: argparse.Namespace) -> int:
    # lazy on purpose: torch and transformers (and datasets, which read_texts' module imports)
    from sinkbench.data.texts import read_texts
    from sinkbench.measure.models import load_model
    from sinkbench.measure.profile import profile_document, render, sink_profile

    plan = ProfilePlan(T=args.T, n=args.n, bos=args.bos, batch_size=args.batch_size, first_k=args.first_k,
                       sweep_lengths=(), sweep_texts=())
    _check_bos(args.bos)
    texts = read_texts(Path(args.data), args.field, args.n)
    _check_device(args.device)
    placement = Placement.from_args(args.device_map, args.max_memory, args.device)
    loaded = load_model(args.model, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                        allow_pickle=args.allow_pickle, device=args.device, placement=placement)
    profile = sink_profile(loaded, plan, texts, str(args.data), progress=not args.quiet)
    document = profile_document(loaded, profile, data={"path": str(args.data), "field": args.field})
    out = Path(args.out)
    write_json_atomic(document, out / "profile.json")
    # The probe's model as a record would name it (a probe has no release date to say).
    model, profile = Model.from_json({**document["model"], "release_date": None}, "model"), document["profile"]
    heatmap = alpha_heatmap_file(profile["alpha_by_head"], f"{model.name}: α per layer and head (<bos> {args.bos})",
                                 f"α per layer and head: {describe_model(model)}, T={args.T}, <bos> {args.bos}")
    write_text_atomic(heatmap, out / "alpha_heatmap.svg")
    print(render(document))
    print(f"  measured: {describe_model(model)}")
    print(f"wrote {out / 'profile.json'} and {out / 'alpha_heatmap.svg'}")
    return 0


def _csv(kind):
    def parse(text: str):
        try:
            return [kind(part) for part in text.split(",") if part != ""]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got '{text}'") from None

    return parse


POSITIVE = {  # flag -> what it counts, for the one-line error when it is not a whole number >= 1
    "T": "tokens per sequence", "n": "sequences", "first_k": "first keys", "batch_size": "rows per forward pass",
    "limit": "documents per task", "max_batch_tokens": "tokens per forward pass", "window": "keys",
}


def _check_positive(args: argparse.Namespace) -> None:
    """Whole numbers >= 1 where a count is asked for; checked before anything loads."""
    for name, what in POSITIVE.items():
        value = getattr(args, name, None)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise SinkbenchError(f"{flag} must be a whole number >= 1 ({what}), got {value}")


def _check_bos(bos: str) -> None:
    Condition.from_args(bos=bos)


def _check_device(device: str) -> None:
    """--device cuda on a torch without CUDA: say so (and how to get a CUDA build) before any model loads."""
    if device.startswith("cuda"):
        import torch  # lazy on purpose: only to ask whether this build has CUDA

        from sinkbench.harness.backend import cuda_missing

        if not torch.cuda.is_available():
            raise SinkbenchError(cuda_missing(device))
    elif device not in ("cpu", "mps") and not device.startswith(("cpu:", "mps:")):
        raise SinkbenchError(f"--device must be cpu, cuda, cuda:N or mps, got '{device}'")


def cmd_run(args: argparse.Namespace) -> int:
    if not args.verbose:
        # lm-eval's per-task bars and transformers' GGUF bars; tqdm reads this when it is first
        # imported, so before sinkbench.run imports them. Bars that set `disable` themselves (ours) stay.
        os.environ.setdefault("TQDM_DISABLE", "1")
    from sinkbench.run import RunConfig, run  # lazy on purpose: torch, transformers and lm-eval

    suite = get_suite(args.suite)
    if args.tasks:  # a suite's group name stands for its tasks
        groups = {f"sinkbench_{name}": [t.name for t in s.tasks] for name, s in SUITES.items()}
        args.tasks = list(dict.fromkeys(t for name in args.tasks for t in groups.get(name, [name])))
    cells = custom_grid(suite, args.tasks, args.bos, args.prefix, args.window, args.sinks, args.knockout)
    if args.release_date is not None:
        _check_date(args.release_date)
    _check_device(args.device)
    placement = Placement.from_args(args.device_map, args.max_memory, args.device)
    out = Path(args.out) if args.out else Path("runs") / args.model.replace("/", "__").removesuffix(".gguf")
    config = RunConfig(
        model=args.model, out=out, suite=suite.name, cells=cells, limit=args.limit, batch_size=args.batch_size,
        max_batch_tokens=args.max_batch_tokens, data_dir=args.data_dir,
        include_path=Path(args.include_path) if args.include_path else None, device=args.device, placement=placement,
        dtype=args.dtype,
        family=args.family, release_date=args.release_date, force=args.force, command=("sinkbench", *args.argv),
    )
    started = time.time()
    try:
        path = run(config, verbose=args.verbose)
    except KeyboardInterrupt:
        if out.is_dir() and any(out.glob("cond-*.json")):
            print(f"\nsinkbench: stopped. Finished conditions are saved in {out}/; "
                  "run the same command again to continue where it stopped.", file=sys.stderr)
        else:  # the run folder removes itself when nothing had finished
            print("\nsinkbench: stopped before any condition had finished, so nothing was kept; "
                  "run the same command again to start over.", file=sys.stderr)
        return 130
    if path is None:  # a rank other than 0 of a data-parallel run: rank 0 reports
        return 0
    record = Record.from_json(read_record(path))
    print()
    print(render_record(record, record.provenance.model_load_s, time.time() - started))
    print(f"\nrecord: {path} (lm-eval results and per-request sink metrics beside it)")
    return 0


def _check_date(text: str) -> None:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        raise SinkbenchError(f"--release-date must be YYYY-MM-DD, got '{text}'") from None


def cmd_validate(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if path.is_dir():  # a run folder: its record
        if not (path / "record.json").is_file():
            raise SinkbenchError(f"{path} is a folder without a record.json (a run writes it when it finishes)")
        path = path / "record.json"
    found = problems(read_record(path))
    if found:
        more = f" (and {len(found) - 1} more problems)" if len(found) > 1 else ""
        raise SinkbenchError(f"{path}: {found[0]}{more}")
    print(f"{path}: valid sinkbench record")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    if args.write_groups:
        changed = write_groups(default_tasks_dir())
        print("\n".join(f"wrote {path}" for path in changed) or "the group files are up to date")
        return 0
    print(describe_tasks(default_tasks_dir()), end="")
    return 0


def _placement_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device-map", default=None, metavar="|".join(DEVICE_MAPS),
                        help="a model larger than one device: spread its layers over the GPUs, then the CPU, then the "
                             "disk (accelerate's big-model loading), instead of --device")
    parser.add_argument("--max-memory", default=None, metavar="DEVICE=SIZE,...",
                        help="with --device-map: what each device may hold, e.g. 0=20GiB,1=20GiB,cpu=64GiB")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sinkbench", description="Measure how much a language model leans on its "
                                     "attention sink, and what breaks without it.")
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
    probe.add_argument("--dtype", default="float32", choices=DTYPES)
    probe.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    _placement_flags(probe)
    probe.add_argument("--out", required=True, help="output folder for profile.json and alpha_heatmap.svg")
    probe.add_argument("--trust-remote-code", action="store_true", help="allow a model's own modelling code to run")
    probe.add_argument("--allow-pickle", action="store_true", help="allow pickle (.bin) weights")
    probe.add_argument("--quiet", action="store_true", help="no progress bar")
    probe.set_defaults(func=cmd_probe)

    run = sub.add_parser("run", help="run a suite's condition grid and sink profile into one record (the main job)",
                         description="Run a suite's condition grid and the sink profile with one model load, and "
                                     "write record.json. A stopped run continues when started again.")
    run.add_argument("--model", default="smollm2-135m", help="alias, hub id, folder or .gguf file (default smollm2-135m)")
    run.add_argument("--suite", default="quick", help="quick (minutes on a CPU) or standard (default quick)")
    run.add_argument("--tasks", type=_csv(str), default=None,
                     help="comma-separated tasks: run only these (see `sinkbench tasks`); default: the suite's")
    run.add_argument("--bos", type=_csv(str), default=None, help="your own grid: comma-separated <bos> modes "
                     "(keep, drop, double, replace:<token>)")
    run.add_argument("--prefix", type=_csv(int), default=None, help="your own grid: comma-separated stress prefix lengths")
    run.add_argument("--window", type=int, default=None, help="your own grid: attend only to the last W keys")
    run.add_argument("--sinks", type=_csv(int), default=None,
                     help="with --window: comma-separated counts of first keys always kept (StreamingLLM: 0,4)")
    run.add_argument("--knockout", default=None, help="your own grid: layers where attention to the first token is masked: all, 3, 0-3, 0+2")
    run.add_argument("--limit", type=int, default=None,
                     help="documents per task (smoke runs; the record says so)")
    run.add_argument("--batch-size", type=int, default=None,
                     help="at most this many rows per forward pass (default: as many as --max-batch-tokens allows)")
    run.add_argument("--max-batch-tokens", type=int, default=None,
                     help="tokens per forward pass, padding included (default 1024 on a CPU, 16384 on a GPU; a longer row runs alone)")
    run.add_argument("--data-dir", default=None, help="benchmark data directory (default: $SINKBENCH_DATA_DIR, "
                     "else ../shared/data beside a checkout; without one, real tasks are skipped)")
    run.add_argument("--include-path", default=None, help="task configs folder (default: sinkbench's tasks)")
    run.add_argument("--out", default=None, help="results folder (default runs/<model>)")
    run.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    _placement_flags(run)
    run.add_argument("--dtype", default="float32", choices=DTYPES, help="float32, bfloat16, float16 or auto (default float32)")
    run.add_argument("--family", default=None, help="model family on the board (default: the alias's, else config.model_type)")
    run.add_argument("--release-date", default=None, help="YYYY-MM-DD: orders releases in `sinkbench board track`")
    run.add_argument("--force", action="store_true", help="recompute everything, replacing the folder's earlier results")
    run.add_argument("-v", "--verbose", action="store_true", help="show lm-eval's and transformers' own messages")
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check a record: schema, value ranges, counts, summary columns")
    validate.add_argument("file", help="a record.json, or a run folder holding one")
    validate.set_defaults(func=cmd_validate)

    tasks = sub.add_parser("tasks", help="list sinkbench's tasks and groups")
    tasks.add_argument("--write-groups", action="store_true",
                       help="(developers) rewrite tasks/groups/ from the suites, after a task is declared or a suite changes")
    tasks.set_defaults(func=cmd_tasks)

    add_commands(sub)  # submit, board build/track/compare, export

    lm_eval = sub.add_parser("lm-eval", help="run lm-evaluation-harness with the sinkbench backend registered", add_help=False)
    lm_eval.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["lm-eval"]:
        from sinkbench.lm_eval_cli import main as lm_eval_main  # lazy on purpose: lm-eval and torch

        return lm_eval_main(argv[1:])
    args = build_parser().parse_args(argv)
    args.argv = list(argv)
    try:
        _check_positive(args)
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
