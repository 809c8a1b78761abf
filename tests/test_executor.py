"""`run_jobs`: results in job order, no orphaned worker once the caller is killed, executors by
name, and what a Ray task does with the run directory (run here; tests/cluster runs it on Ray)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from frugalml.errors import FrugalError
from frugalml.executor import Executor, bench_executor, parse_executor, remote_job, run_jobs, snapshot


def _square(x: int) -> int:
    return x * x


def test_results_come_back_in_job_order_from_worker_processes():
    assert run_jobs(_square, [{"x": i} for i in range(5)], workers=2) == [0, 1, 4, 9, 16]


CALLER = """
import os, sys, time
from pathlib import Path
from frugalml.executor import run_jobs

def job(out, i):
    Path(out, f"w{i}").write_text(str(os.getpid()))
    time.sleep(60)

if __name__ == "__main__":
    run_jobs(job, [{"out": sys.argv[1], "i": i} for i in range(2)], workers=2)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_workers_exit_when_the_caller_is_killed(tmp_path):
    script = tmp_path / "caller.py"
    script.write_text(CALLER)
    caller = subprocess.Popen([sys.executable, str(script), str(tmp_path)])
    try:
        deadline = time.time() + 60
        while len(list(tmp_path.glob("w*"))) < 2 and time.time() < deadline:
            time.sleep(0.2)
        pids = [int(f.read_text()) for f in tmp_path.glob("w*")]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        caller.send_signal(signal.SIGTERM)  # as `kill` does: no cleanup in the caller
        caller.wait(timeout=10)
        deadline = time.time() + 10
        while any(_alive(p) for p in pids) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in pids)
    finally:
        caller.kill()


# ---------------------------------------------------------------- executors by name


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("serial", Executor()),
        ("processes:3", Executor("processes", 3)),
        ("ray", Executor("ray")),
        ("ray:auto", Executor("ray", address="auto")),
        ("ray://head.example:10001", Executor("ray", address="ray://head.example:10001")),
        ("ray:10.0.0.2:6379", Executor("ray", address="10.0.0.2:6379")),
        (2, Executor("processes", 2)),
        (1, Executor()),
    ],
)
def test_every_executor_form_reads_and_prints_back(text, want):
    ex = parse_executor(text)
    assert ex == want
    if isinstance(text, str):
        assert str(ex) == text and parse_executor(str(ex)) == ex


def test_processes_without_a_count_is_every_core():
    assert parse_executor("processes") == Executor("processes", os.cpu_count())


@pytest.mark.parametrize("text", ["ray:nohost", "ray://h:0", "ray://h:99999", "processes:0", "processes:x", "dask", ""])
def test_a_malformed_executor_is_one_clear_error(text, monkeypatch):
    monkeypatch.delenv("FRUGAL_EXECUTOR", raising=False)
    if text == "":  # empty means the default, not an error
        assert parse_executor(text or None) == Executor()
        return
    with pytest.raises(FrugalError, match="executor"):
        parse_executor(text)


def test_frugal_executor_sets_the_default(monkeypatch):
    monkeypatch.setenv("FRUGAL_EXECUTOR", "processes:2")
    assert parse_executor(None) == Executor("processes", 2)
    assert run_jobs(_square, [{"x": 3}, {"x": 4}]) == [9, 16]


def test_a_benchmark_runs_on_frugal_executor_when_set_else_its_workers(monkeypatch):
    monkeypatch.delenv("FRUGAL_EXECUTOR", raising=False)
    assert parse_executor(bench_executor(3)) == Executor("processes", 3)
    monkeypatch.setenv("FRUGAL_EXECUTOR", "serial")
    assert parse_executor(bench_executor(3)) == Executor()


def test_one_advance_per_finished_job():
    done = []
    assert run_jobs(_square, [{"x": i} for i in range(3)], "processes:2", advance=done.append) == [0, 1, 4]
    assert done == [1, 1, 1]


def _writes(out: str, name: str, text: str) -> str:
    Path(out, "sub").mkdir(parents=True, exist_ok=True)
    Path(out, "sub", name).write_text(Path(out, "input.txt").read_text() + text)
    return str(Path(out, "sub", name))


def test_a_remote_job_runs_in_a_scratch_copy_and_brings_back_what_it_wrote(tmp_path):
    """What a Ray task does, run here: the run directory's files in a scratch copy, paths under
    it rewritten both ways, only new or changed files returned, in the order they were written."""
    (tmp_path / "input.txt").write_text("in:")
    (tmp_path / "spent.json").write_text("{}")  # the driver's ledger stays behind
    files = snapshot(tmp_path)
    assert files == {"input.txt": b"in:"}
    got = remote_job(_writes, {"out": str(tmp_path), "name": "a.txt", "text": "A"}, files, str(tmp_path), None)
    assert got["result"] == str(tmp_path / "sub" / "a.txt")  # the driver's path, not the scratch copy's
    assert got["files"] == [("sub/a.txt", b"in:A")] and got["spent"] is None
    assert not (tmp_path / "sub").exists()  # the job wrote nothing here: the driver does


def test_a_remote_job_measures_what_it_spent_when_given_a_meter(tmp_path):
    from frugalml.cost.tracker import Ledger

    got = remote_job(_square, {"x": 5}, {}, None, Ledger.meter)
    assert got["result"] == 25 and got["spent"]["cpu_s"] >= 0 and got["spent"]["finished"]
    with Ledger(tmp_path, use_codecarbon=False) as ledger:
        ledger.add_remote([got["spent"] | {"cpu_s": 7.0, "energy_j": 3.0}])
    total = ledger.total()
    own = [s for s in ledger.segments if not s.get("remote")]
    assert total["segments"] == 2 and total["cpu_s"] == pytest.approx(7.0 + own[0]["cpu_s"])
    assert total["energy_j"] == pytest.approx(3.0 + own[0]["energy_j"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["tickets", "find", "--workers", "2", "--executor", "serial"], "give --executor or --workers, not both"),
        (["tickets", "find", "--executor", "processes:0"], "processes:N takes a count N >= 1"),
        (["analog", "sweep", "--param", "states", "--executor", "dask"], "malformed executor 'dask'"),
        (["tickets", "transfer", "--run", "NOPE", "--data", "digits", "--executor", "ray:h"], "malformed executor"),
    ],
)
def test_a_bad_executor_on_the_command_line_is_refused_before_anything_is_written(
    args, needle, assert_bad_input, tmp_path
):
    assert_bad_input([*args, "--out", tmp_path / "o"], tmp_path / "o", needle)


def test_ray_auto_without_a_cluster_here_is_one_clear_error(monkeypatch, tmp_path):
    from frugalml.executor import _auto_address

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    with pytest.raises(FrugalError, match="ray start --head"):
        _auto_address()
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("10.0.0.5:6379\n")  # what `ray start --head` leaves
    assert _auto_address() == "10.0.0.5:6379"
