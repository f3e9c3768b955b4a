"""Installed as users install it: the wheel into a clean venv (CPU torch first), then `sinkbench tasks`,
a tiny `sinkbench run` that writes a record, and `--model sinkbench` registered without torch at import."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # a CPU build from this machine's disk; a plain `torch` would pull a CUDA build


def _registry_reachable(tmp_path) -> bool:
    probe = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp_path), "six"],
                           capture_output=True, timeout=120)
    return probe.returncode == 0


def _run(command, **kwargs):
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, command))}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_wheel_in_a_clean_venv(tmp_path, tiny_model_dir):
    if not _registry_reachable(tmp_path / "probe"):
        pytest.skip("the package registry is unreachable: cannot install the wheel's dependencies")
    pip_quiet = ["--disable-pip-version-check", "-q"]
    _run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", *pip_quiet, "-w", str(tmp_path / "wheel")])
    (wheel,) = (tmp_path / "wheel").glob("sinkbench-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python, sinkbench = venv / "bin" / "python", venv / "bin" / "sinkbench"
    _run([python, "-m", "pip", "install", *pip_quiet, TORCH])
    _run([python, "-m", "pip", "install", *pip_quiet, str(wheel)])

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SINKBENCH_DATA_DIR")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    elsewhere = tmp_path / "work"  # not the checkout: the installed task configs must be found
    elsewhere.mkdir()
    listing = _run([sinkbench, "tasks"], env=env, cwd=elsewhere).stdout
    assert "sinkbench_quick" in listing and "sinkbench_passkey_quick" in listing

    out = tmp_path / "out"
    _run([sinkbench, "run", "--model", str(tiny_model_dir), "--tasks", "sinkbench_passkey_quick", "--bos", "keep",
          "--prefix", "0", "--limit", "2", "--out", str(out)], env=env, cwd=elsewhere)
    record = json.loads((out / "record.json").read_text())
    assert record["conditions"][0]["scores"]["sinkbench_passkey_quick"]["acc"]["n"] == 2
    _run([sinkbench, "validate", str(out / "record.json")], env=env, cwd=elsewhere)

    check = ("import sys, sinkbench; assert 'torch' not in sys.modules, 'import sinkbench imported torch'; "
             "from lm_eval.api.registry import model_registry; assert 'sinkbench' in model_registry; "
             "from lm_eval.api.registry import get_model; print(get_model('sinkbench').__name__)")
    assert _run([python, "-c", check], env=env, cwd=elsewhere).stdout.strip() == "SinkbenchLM"
