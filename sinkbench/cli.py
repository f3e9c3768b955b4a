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
    from sinkbench.models import load_model
    from sinkbench.files import write_json_atomic
    from sinkbench.profile import ProbeConfig, render, run_probe, save_heatmap

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
    from sinkbench.run import RunConfig, condition_grid, run_grid, summary_table

    out = Path(args.out) if args.out else Path("runs") / args.model.replace("/", "__").removesuffix(".gguf")
    attention_study = args.window is not None or args.knockout is not None
    if args.bos is None:
        args.bos = ["keep"] if attention_study else ["keep", "drop"]
    if args.prefix is None:
        args.prefix = [0] if attention_study else [0, 1024]
    config = RunConfig(
        model=args.model, out=out, tasks=tuple(args.tasks),
        conditions=condition_grid(args.bos, args.prefix, args.window, args.sinks, args.knockout),
        limit=args.limit, batch_size=args.batch_size, data_dir=args.data_dir,
        include_path=Path(args.include_path) if args.include_path else None,
    )
    documents = run_grid(config)
    done = {d["condition"] for d in documents}
    for path in sorted(out.glob("*.json")):  # conditions from earlier runs into the same folder
        earlier = json.loads(path.read_text())
        if isinstance(earlier, dict) and earlier.get("condition") not in done and "results" in earlier:
            documents.append(earlier)
            done.add(earlier["condition"])
    table = summary_table(documents)
    with_pandas_width = table.to_string(float_format=lambda v: f"{v:.4g}")
    print(with_pandas_width)
    (out / "summary.txt").write_text(with_pandas_width + "\n")
    print(f"results in {out}/")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from lm_eval.tasks import TaskManager

    from sinkbench.run import default_tasks_dir

    manager = TaskManager(include_path=str(default_tasks_dir()), include_defaults=False)
    for name in sorted(n for n in manager.all_tasks if n.startswith("sinkbench")):
        print(name)
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

    run = sub.add_parser("run", help="run a task suite over a grid of stress conditions (the main job)")
    run.add_argument("--model", default="smollm2-135m", help="alias, hub id, folder or .gguf file (default smollm2-135m)")
    run.add_argument("--tasks", type=_csv(str), default=["sinkbench_quick"],
                     help="comma-separated tasks or groups (default sinkbench_quick; see `sinkbench tasks`)")
    run.add_argument("--bos", type=_csv(str), default=None,
                     help="comma-separated <bos> modes (default keep,drop; keep with --window/--knockout)")
    run.add_argument("--prefix", type=_csv(int), default=None,
                     help="comma-separated stress prefix lengths (default 0,1024; 0 with --window/--knockout)")
    run.add_argument("--window", type=int, default=None, help="attend only to the last W keys (plus --sinks first keys)")
    run.add_argument("--sinks", type=_csv(int), default=[0],
                     help="with --window: comma-separated counts of first keys always kept (StreamingLLM: 0,4)")
    run.add_argument("--knockout", default=None, help="layers where attention to the first token is masked: all, 3, 0-3, 0+2")
    run.add_argument("--limit", type=int, default=None, help="documents per task (smoke runs)")
    run.add_argument("--batch-size", type=int, default=8)
    run.add_argument("--data-dir", default=None, help="benchmark data directory (default: $SINKBENCH_DATA_DIR)")
    run.add_argument("--include-path", default=None, help="task configs folder (default: sinkbench's tasks/)")
    run.add_argument("--out", default=None, help="results folder (default runs/<model>)")
    run.set_defaults(func=cmd_run)

    tasks = sub.add_parser("tasks", help="list sinkbench's tasks and groups")
    tasks.set_defaults(func=cmd_tasks)

    lm_eval = sub.add_parser("lm-eval", help="run lm-evaluation-harness with the sinkbench backend registered", add_help=False)
    lm_eval.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["lm-eval"]:
        from sinkbench.lm_eval_cli import main as lm_eval_main

        return lm_eval_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SinkbenchError as err:
        print(f"sinkbench: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
