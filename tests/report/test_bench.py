"""Benchmark results record the commit they ran on and whether the tree was clean."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from frugalml.files import read_json
from frugalml.report import bench

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def _git(repo, *args):
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    out = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=os.environ | env)
    return out.stdout.strip()


def test_git_state_commit_and_clean_flag(tmp_path):
    repo = tmp_path / "repo"
    (repo / "benchmarks").mkdir(parents=True)
    script = repo / "benchmarks" / "bench_x.py"
    script.write_text("print(1)\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "rev-parse", "HEAD")
    assert len(head) == 40

    assert bench.git_state(script) == {"git_commit": head, "git_clean": True}
    script.write_text("print(2)\n")  # a modified tracked file
    assert bench.git_state(script) == {"git_commit": head, "git_clean": False}
    _git(repo, "checkout", "-q", "--", ".")
    (repo / "benchmarks" / "new.txt").write_text("x")  # an untracked file
    assert bench.git_state(script) == {"git_commit": head, "git_clean": False}
    (repo / "benchmarks" / "new.txt").unlink()
    (repo / "benchmarks" / "results").mkdir()
    (repo / "benchmarks" / "results" / "bench_x.png").write_bytes(b"png")  # the run's own plot
    assert bench.git_state(script) == {"git_commit": head, "git_clean": True}
    (repo / "benchmarks" / "results" / "other.json").write_text("{}")  # a results file another bench may read
    assert bench.git_state(script) == {"git_commit": head, "git_clean": False}


def test_git_state_outside_a_checkout(tmp_path):
    script = tmp_path / "bench_y.py"
    script.write_text("")
    # tmp_path lies under /tmp, which is not a git checkout
    if subprocess.run(["git", "rev-parse"], cwd=tmp_path, capture_output=True).returncode == 0:
        pytest.skip("tmp dir is inside a git checkout")
    assert bench.git_state(script) == {"git_commit": None, "git_clean": None}


def test_save_result_writes_commit(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "bench_z.py"
    script.write_text("")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    monkeypatch.setattr("sys.argv", [str(script), "--quick"])
    out = bench.save_result("demo", {"figure": 1.5}, results_dir=tmp_path / "results")
    saved = read_json(out)
    assert saved["figure"] == 1.5
    assert saved["context"]["git_commit"] == _git(repo, "rev-parse", "HEAD")
    assert saved["context"]["git_clean"] is True
    assert saved["context"]["command"].endswith("bench_z.py --quick")
    load = saved["context"]["load_average"]  # the machine's own figures, rounded
    assert len(load) == 3 and abs(load[2] - os.getloadavg()[2]) < 1.0


def test_every_committed_result_records_a_clean_commit_of_this_history():
    """A figure is traceable only if its file names the commit it ran on, that commit is in
    this history, and the tree was clean (no uncommitted change could have made it)."""
    root = Path(__file__).resolve().parents[2]
    if subprocess.run(["git", "rev-parse"], cwd=root, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "benchmarks/results/*.json"], cwd=root, capture_output=True, text=True, check=True
    )
    files = [root / f for f in listed.stdout.split()]  # committed ones: not the ignored _quick runs
    assert files
    bad = []
    for f in files:
        ctx = read_json(f).get("context") or {}
        commit = ctx.get("git_commit")
        if not commit or ctx.get("git_clean") is not True:
            bad.append(f"{f.name}: commit {commit}, clean {ctx.get('git_clean')}")
            continue
        known = subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=root, capture_output=True)
        if known.returncode != 0:
            bad.append(f"{f.name}: commit {commit[:10]} is not in this history")
    assert not bad, "results without a traceable clean commit:\n" + "\n".join(bad)
