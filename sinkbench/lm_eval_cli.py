"""`sinkbench lm-eval ...` / `sinkbench-lm-eval ...`: lm-eval's own CLI with `--model sinkbench` available.

lm-eval 0.4.13 finds a plugin backend only if something imported it first; this wrapper
imports the backend, then hands the arguments to lm-eval unchanged, with its request cache
keyed by model and condition (sinkbench.harness.cache). It also works as `accelerate launch -m
sinkbench.lm_eval_cli ...` and `torchrun ... -m sinkbench.lm_eval_cli ...` for data-parallel runs.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # before tokenizers is imported

from lm_eval.__main__ import cli_evaluate  # noqa: E402

import sinkbench.harness.backend  # noqa: E402,F401  registers --model sinkbench
from sinkbench.harness.cache import keyed_request_cache  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    sys.argv = ["lm_eval", *(sys.argv[1:] if argv is None else argv)]
    with keyed_request_cache():
        cli_evaluate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
