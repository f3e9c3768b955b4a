"""Installed as users install it: the wheel into a clean venv (CPU torch first), then `sinkbench tasks`,
a tiny `sinkbench run` that writes a record, and `--model sinkbench` registered without torch at import.

About 1.5 minutes on a 2-core CPU with pip's cache warm. Skipped only when the package registry
cannot be reached (the wheel's dependencies come from it)."""

import json
import os
import subprocess
import sys
import time

import pytest

from test_packaging import build_wheel

TORCH = "torch==2.13.0"  # a CPU build from this machine's disk; a plain `torch` would pull a CUDA build
PIP_QUIET = ["--disable-pip-version-check", "-q"]

# After `import sinkbench` alone: no torch yet, and lm-eval's simple_evaluate finds --model sinkbench.
EVALUATE = """
import sys
import sinkbench
assert "torch" not in sys.modules, "import sinkbench imported torch"
import lm_eval
from lm_eval.api.registry import get_model, model_registry
from lm_eval.tasks import TaskManager
from sinkbench.harness.tasklist import default_tasks_dir
assert "sinkbench" in model_registry and "torch" not in sys.modules
model = sys.argv[1]
tasks = TaskManager(include_path=str(default_tasks_dir()), include_defaults=False, metadata={"tokenizer": model})
out = lm_eval.simple_evaluate(model="sinkbench", model_args=f"pretrained={model},bos=keep",
                              tasks=["sinkbench_passkey_quick_512"], task_manager=tasks, limit=2, batch_size=2,
                              bootstrap_iters=0)
assert out["n-samples"]["sinkbench_passkey_quick_512"]["effective"] == 2, out["n-samples"]
assert "acc,none" in out["results"]["sinkbench_passkey_quick_512"]
print(get_model("sinkbench").__name__, default_tasks_dir().name)
"""


def _registry_reachable(folder) -> bool:
    """Whether pip gets lm-eval, a dependency that only the registry has (six, say, may sit in a
    local index or find-links folder), with one try and a short timeout."""
    try:
        probe = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", *PIP_QUIET, "--retries", "0", "--timeout", "15",
             "-d", str(folder), "lm-eval==0.4.13"],
            capture_output=True, timeout=120,
        )
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


def _run(command, timeout=300, **kwargs):
    proc = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, command))}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
@pytest.mark.subprocess
def test_wheel_in_a_clean_venv(tmp_path, tiny_model_dir):
    if not _registry_reachable(tmp_path / "probe"):
        pytest.skip("the package registry is unreachable: cannot install the wheel's dependencies")
    start = time.monotonic()
    wheel = build_wheel(tmp_path / "build")  # from a copy: a stale build/ in the checkout cannot leak in
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    python, sinkbench = venv / "bin" / "python", venv / "bin" / "sinkbench"
    _run([python, "-m", "pip", "install", *PIP_QUIET, TORCH])
    _run([python, "-m", "pip", "install", *PIP_QUIET, wheel])
    installed = time.monotonic()

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SINKBENCH_DATA_DIR", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    elsewhere = tmp_path / "work"  # not the checkout: the installed task configs must be found
    elsewhere.mkdir()
    listing = _run([sinkbench, "tasks"], env=env, cwd=elsewhere).stdout
    assert "sinkbench_quick" in listing and "sinkbench_passkey_quick_512" in listing

    out = tmp_path / "out"
    _run([sinkbench, "run", "--model", tiny_model_dir, "--tasks", "sinkbench_passkey_quick_512", "--bos", "keep",
          "--prefix", "0", "--limit", "2", "--out", out], env=env, cwd=elsewhere)
    # record.json and `sinkbench validate` come from sinkbench.run.runner / sinkbench.record.format (not packaging):
    record = json.loads((out / "record.json").read_text())
    assert record["conditions"][0]["scores"]["sinkbench_passkey_quick_512"]["acc"]["n"] == 2
    _run([sinkbench, "validate", out / "record.json"], env=env, cwd=elsewhere)

    evaluated = _run([python, "-c", EVALUATE, tiny_model_dir], env=env, cwd=elsewhere).stdout.split()
    assert evaluated[-2:] == ["SinkbenchLM", "sinkbench_tasks"]  # the installed configs, not a checkout's
    print(f"install {installed - start:.0f} s, commands {time.monotonic() - installed:.0f} s")
