"""`sinkbench lm-eval ...` runs lm-eval's own CLI with --model sinkbench available."""

import json
import os
import subprocess
import sys

import pytest

from sinkbench.harness.tasklist import default_tasks_dir


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.needs_data  # sinkbench_copa reads the data directory
def test_lm_eval_cli_with_sinkbench_model(tiny_model_dir, tmp_path):
    sidecar = tmp_path / "sinks.jsonl"
    command = [
        sys.executable, "-m", "sinkbench.cli", "lm-eval", "--model", "sinkbench",
        "--model_args", f"pretrained={tiny_model_dir},bos=drop,sidecar={sidecar}",
        "--tasks", "sinkbench_copa", "--include_path", str(default_tasks_dir()), "--limit", "3",
        "--batch_size", "2", "--output_path", str(tmp_path / "out"),
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = list((tmp_path / "out").rglob("results_*.json"))
    assert len(results) == 1
    info = json.loads(results[0].read_text())["config"]["sinkbench"]
    assert info["condition"] == "bos=drop"
    assert info["sink_metrics"]["sinkbench_copa"]["n_requests"] == 6
    assert len(sidecar.read_text().splitlines()) == 6


LAUNCHERS = {
    "torchrun": ["torchrun", "--nproc_per_node", "2"],
    # accelerate starts CPU ranks only through its multi-GPU launcher (torchrun underneath);
    # `--cpu --num_processes 2` runs a single process.
    "accelerate": ["accelerate", "launch", "--multi_gpu", "--num_processes", "2"],
}


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.needs_data  # sinkbench_copa reads the data directory
@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_data_parallel_ranks_merge_their_sink_metrics(launcher, tiny_model_dir, tmp_path):
    """Two CPU ranks split the documents; rank 0 reports every request once."""
    sidecar = tmp_path / "sinks.jsonl"
    program, *launch_args = LAUNCHERS[launcher]
    command = [
        os.path.join(os.path.dirname(sys.executable), program), *launch_args,
        "-m", "sinkbench.lm_eval_cli", "--model", "sinkbench",
        "--model_args", f"pretrained={tiny_model_dir},sidecar={sidecar}",
        "--tasks", "sinkbench_copa", "--include_path", str(default_tasks_dir()), "--limit", "11",
        "--batch_size", "2", "--output_path", str(tmp_path / "out"),
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rank0 = sidecar.read_text().splitlines()
    rank1 = (tmp_path / "sinks.jsonl.rank1").read_text().splitlines()
    assert len(rank0) == len(rank1) == 12  # 11 docs x 2 choices, split 6/5, plus lm-eval's one padded doc
    result = json.loads(next((tmp_path / "out").rglob("results_*.json")).read_text())
    assert result["config"]["sinkbench"]["sink_metrics"]["sinkbench_copa"]["n_requests"] == 22
    keys = {(r["doc_id"], r["request_index"]) for r in map(json.loads, rank0 + rank1)}
    assert len(keys) == 22
