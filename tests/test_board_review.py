"""`board review` (a pull request's records checked, the board rebuilt, Markdown for a comment) on the board's
real records, the GitHub Actions workflow that runs it, and the board commands without torch installed."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from board_helpers import BOARD, degraded, file_board, record, run_cli, snapshot, with_identity, write
from sinkbench.board.store import submission_path
from sinkbench.record.format import read_record

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "leaderboard" / "submissions"
GEMMA = Path("submissions/gemma3/gemma3-270m/a5fd3b62230a.json")
SMOLLM2 = Path("submissions/smollm2/smollm2-135m/b179c9523d0e.json")
WORKFLOW = ROOT / ".github" / "workflows" / "board.yml"


def real_board(folder: Path, leave_out: tuple[Path, ...] = ()) -> Path:
    """A copy of the board's real records (not its built files), without `leave_out`."""
    shutil.copytree(REAL, folder / "submissions")
    for path in leave_out:
        (folder / path).unlink()
    return folder


def review(board: Path, base, capsys, *extra) -> tuple[int, str, str]:
    code = run_cli(["board", "review", "--board", board, "--base", base, "--out", board.parent / "review.md", *extra])
    err = capsys.readouterr().err
    return code, (board.parent / "review.md").read_text(encoding="utf-8"), err


def test_a_new_family_gets_its_rank_band_and_the_nearest_records(tmp_path, capsys):
    base = real_board(tmp_path / "base", leave_out=(SMOLLM2,))
    board = real_board(tmp_path / "board")
    code, text, _ = review(board, base, capsys)
    assert code == 0
    assert text.startswith("<!-- sinkbench board review -->\n")
    assert "1 record added or changed, 0 removed. Every changed record is valid, and the board builds (3 records)" in text
    # The README's example table: SmolLM2 0.484 [0.463, 0.504] lies wholly below Gemma's 0.561 [0.540, 0.581] (band 2)
    # and overlaps Qwen's 0.525 [0.504, 0.546] (the same band: the two cannot be told apart).
    assert "Rank band 2 of 3 records on suite quick 4.0; suite score 0.484 [0.463, 0.504]." in text
    assert "The first release of family smollm2 on suite quick 4.0 on this board" in text
    rows = {line.split(" | ")[1].strip("*"): line for line in text.splitlines() if line.startswith("| ") and " | " in line}
    assert rows["gemma3-270m"].startswith("| 1 |") and rows["gemma3-270m"].endswith("| no |")
    assert "0.561 [0.540, 0.581]" in rows["gemma3-270m"] and "0.342 [0.311, 0.374]" in rows["gemma3-270m"]
    assert rows["qwen2.5-coder-0.5b-instruct-q4\\_k\\_m"].startswith("| 1 |")
    assert rows["qwen2.5-coder-0.5b-instruct-q4\\_k\\_m"].endswith("| yes |")
    assert rows["smollm2-135m"].endswith("| (this record) |") and "0 by construction" in rows["smollm2-135m"]
    assert (board / "site" / "index.html").is_file() and "smollm2-135m" in (board / "README.md").read_text()


def test_a_release_is_compared_with_the_previous_one(tmp_path, capsys):
    """A second gemma3-270m release with 20% of each accuracy task's right documents wrong: a regression whose
    size is counted here from the outcomes themselves."""
    board = real_board(tmp_path / "board")
    base = real_board(tmp_path / "base")
    old = read_record(board / GEMMA)
    new = with_identity(degraded(old, 0.2), revision="b2", release_date="2025-10-01")
    write(new, board / submission_path(new))
    code, text, _ = review(board, base, capsys)
    assert code == 0  # a regression is reported, not failed
    assert "### gemma3-270m, revision b2 (family gemma3, suite quick 4.0)" in text
    assert ("Against the model's previous release: gemma3-270m, revision a5fd3b62230a (released 2025-08-14). "
            "Two records of one model (gemma3-270m, family gemma3): a regression test.") in text
    tasks = ("sinkbench_lambada_quick", "sinkbench_piqa_quick", "sinkbench_arc_easy_quick")
    right = [sum(old["conditions"][0]["outcomes"][t]["acc"]) for t in tasks]
    before = sum(r / 700 for r in right) / 3
    after = sum((r - round(0.2 * r)) / 700 for r in right) / 3
    row = next(line for line in text.splitlines() if line.startswith("| suite score"))
    assert row.startswith(f"| suite score ↑ | {before:.3f} | {after:.3f} | {after - before:+.3f} |")
    assert row.endswith("| **REGRESSION** |")
    assert "**Regression** against the previous release: gemma3-270m, revision b2." in text
    assert "**REGRESSION of this record against the model's previous release: suite score ↑ fell by" in text
    assert run_cli(["board", "review", "--board", board, "--base", base, "--fail-on-regression"]) == 1


def test_an_unchanged_release_is_within_noise(tmp_path, capsys):
    board = real_board(tmp_path / "board")
    base = real_board(tmp_path / "base")
    same = with_identity(read_record(board / GEMMA), revision="b2", release_date="2025-10-01")
    write(same, board / submission_path(same))
    code, text, _ = review(board, base, capsys)
    assert code == 0
    row = next(line for line in text.splitlines() if line.startswith("| suite score"))
    assert row.startswith("| suite score ↑ | 0.561 | 0.561 | +0.000 |") and row.endswith("| within noise |")
    assert "**No regression of this record against the model's previous release.**" in text


def test_invalid_records_fail_with_one_line_each_and_nothing_is_built(tmp_path, capsys):
    base = file_board(tmp_path / "base", BOARD[:2])
    board = file_board(tmp_path / "board", BOARD[:2])
    bad = record(**BOARD[2])
    bad["summary"]["suite_score"]["value"] += 0.1
    write(bad, board / submission_path(bad))
    misfiled = record(family="gemma", model="gemma-9b", revision="c1", seed=8)
    write(misfiled, board / "submissions" / "gemma" / "gemma-9b" / "wrong.json")
    before = snapshot(board)
    code, text, err = review(board, base, capsys)
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("sinkbench: error: submissions/gemma/") for line in lines)
    assert "gemma-7b/b2.json: summary.suite_score.value" in err and "wrong.json: its record belongs at" in err
    assert "2 of 2 changed records are refused; the board was not rebuilt." in text
    assert snapshot(board) == before  # nothing built


def test_changes_given_as_paths_and_bad_bases(tmp_path, capsys):
    board = file_board(tmp_path / "board", BOARD[:2])
    path = board / submission_path(record(**BOARD[1]))
    assert run_cli(["board", "review", "--board", board, path]) == 0
    assert "### gemma-7b, revision b1" in capsys.readouterr().out
    assert run_cli(["board", "review", "--board", board, tmp_path]) == 2
    assert "not under" in capsys.readouterr().err
    assert run_cli(["board", "review", "--board", board]) == 2
    assert "say what changed" in capsys.readouterr().err
    assert run_cli(["board", "review", "--board", board, "--base", "no-such-ref"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sinkbench: error: git merge-base: ") and len(err.splitlines()) == 1


# ---- the workflow -----------------------------------------------------------------------


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def steps() -> list[dict]:
    return workflow()["jobs"]["review"]["steps"]


def step_running(text: str) -> dict:
    return next(step for step in steps() if text in step.get("run", ""))


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                   capture_output=True)


def test_the_workflow_runs_on_board_pull_requests_and_comments():
    parsed = workflow()
    on = parsed.get("on", parsed.get(True))  # YAML 1.1 reads the key `on` as true
    assert on["pull_request"]["paths"] == ["leaderboard/submissions/**"]
    assert parsed["permissions"]["pull-requests"] == "write"
    uses = [step.get("uses", "") for step in steps()]
    assert uses[0].startswith("actions/checkout@") and steps()[0]["with"]["fetch-depth"] == 0
    assert any(u.startswith("actions/setup-python@") for u in uses)
    command = shlex.split(step_running("sinkbench board review")["run"])
    out = command[command.index("--out") + 1]
    comment = next(step for step in steps() if step.get("uses", "").startswith("actions/github-script@"))
    assert comment["if"].startswith("always()") and f"readFileSync('{out}'" in comment["with"]["script"]
    assert "<!-- sinkbench board review -->" in comment["with"]["script"]


def test_the_workflows_command_reviews_a_pull_request_in_git(tmp_path, monkeypatch, capsys):
    """The workflow's own command line, run in a repository whose base branch is origin/main: the record the
    pull request adds (untracked here, as after `sinkbench submit`) is reviewed; one the base added after the
    fork point is not the pull request's."""
    repo = tmp_path / "repo"
    file_board(repo / "leaderboard", BOARD[:2])
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    file_board(repo / "leaderboard", [BOARD[3]])  # the base moves on: a record the pull request knows nothing of
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "later")
    git(repo, "update-ref", "refs/remotes/origin/main", "main")
    git(repo, "checkout", "-q", "-b", "pr", "main~1")
    file_board(repo / "leaderboard", [BOARD[2]])
    command = step_running("sinkbench board review")["run"].replace("${{ github.base_ref }}", "main")
    argv = shlex.split(command)
    assert argv[:3] == ["sinkbench", "board", "review"]
    monkeypatch.chdir(repo)
    assert run_cli(argv[1:]) == 0
    text = (repo / argv[argv.index("--out") + 1]).read_text(encoding="utf-8")
    assert "Against origin/main (fork point " in text and "1 record added or changed, 0 removed" in text
    assert "### gemma-7b, revision b2" in text and "SmolLM2" not in text.split("### ")[1]
    assert "Against the model's previous release: gemma-7b, revision b1 (released 2024-02-21)." in text


def test_the_board_commands_run_without_torch_installed(tmp_path):
    """As in the workflow's environment: every module that is neither Python's own, sinkbench's, nor from the
    packages the workflow installs and what they require is made unimportable (torch, transformers, lm-eval among
    them); review, build, track and export still run."""
    install = step_running("pip install --no-deps")["run"]
    installed = sorted({word for line in install.splitlines() if "--no-deps" not in line
                        for word in shlex.split(line)[4:]})
    base = file_board(tmp_path / "base", BOARD[:2])
    board = file_board(tmp_path / "board", BOARD[:3])
    script = f"""
import importlib.abc, importlib.metadata as metadata, re, sys

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

closure, todo = set(), {{norm(n) for n in {installed!r}}}
while todo:  # the installed packages and everything they require, transitively (extras left out)
    name = todo.pop()
    if name not in closure:
        closure.add(name)
        try:
            todo |= {{norm(re.split(r"[ ;<>=!~\\[(]", r, maxsplit=1)[0]) for r in metadata.requires(name) or []
                     if "extra ==" not in r}}
        except metadata.PackageNotFoundError:
            pass
allowed = {{m for m, owners in metadata.packages_distributions().items() if any(norm(d) in closure for d in owners)}}
allowed |= set(sys.stdlib_module_names) | {{"sinkbench", "board_helpers", "records"}}
assert not {{"torch", "transformers", "lm_eval", "datasets", "accelerate"}} & allowed

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in allowed and not name.startswith("_"):
            raise ModuleNotFoundError(f"No module named {{name!r}}")

sys.meta_path.insert(0, Missing())
sys.path.insert(0, {str(ROOT / "tests")!r})
from sinkbench.cli import main
board = {str(board)!r}
assert main(["board", "review", "--board", board, "--base", {str(base)!r}]) == 0
assert main(["board", "build", "--board", board]) == 0
assert main(["board", "track", "gemma", "--board", board]) in (0, 1)
assert main(["board", "export", "--tidy", board + "/outcomes.parquet", "--board", board]) == 0
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "### gemma-7b, revision b2" in done.stdout
