"""`sinkbench lm-eval ...` / `sinkbench-lm-eval ...`: lm-eval's own CLI with `--model sinkbench` available.

lm-eval 0.4.13 finds a plugin backend only if something imported it first; this wrapper
imports sinkbench.harness.backend, then hands the arguments to lm-eval unchanged. It also works as
`accelerate launch -m sinkbench.lm_eval_cli ...` for data-parallel runs.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    import sinkbench.harness.backend  # noqa: F401  registers --model sinkbench and the cache fix
    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm_eval", *(sys.argv[1:] if argv is None else argv)]
    cli_evaluate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
