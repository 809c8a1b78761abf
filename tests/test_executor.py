"""`run_jobs`: results in job order, and no orphaned worker once the caller is killed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from frugalml.executor import run_jobs


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
