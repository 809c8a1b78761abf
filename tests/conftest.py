import os
import sys
from pathlib import Path

import pytest
import torch

# Tests must be quick and reproducible on 2 cores, whatever else is running.
torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))  # tests/clirun.py, shared by chained-command tests
os.environ.setdefault("FRUGAL_REGION", "world")


@pytest.fixture
def frugal_bin():
    """Path of the installed `frugal` console script in this environment."""
    import shutil
    import sys
    from pathlib import Path

    candidate = Path(sys.executable).with_name("frugal")
    return str(candidate) if candidate.exists() else shutil.which("frugal")


def _snapshot(path):
    """Every file under `path` with its bytes (None when `path` does not exist)."""
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        return None
    if path.is_file():
        return {".": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def assert_bad_input(capsys):
    """`assert_bad_input(args, out_dir, needle)`: `frugal ARGS` (in process, through `cli.main`)
    exits with status 2, prints exactly one line on stderr, containing `needle` and no
    traceback, and leaves `out_dir` (None: nothing to check) absent or unchanged. Returns that line."""

    def check(args, out_dir, needle):
        from frugalml.cli import main

        before = None if out_dir is None else _snapshot(out_dir)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert exc.value.code == 2, f"exit status {exc.value.code} for {args}: {err}"
        assert "Traceback" not in err, err
        assert len(lines) == 1, f"{len(lines)} lines on stderr for {args}:\n{err}"
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
        if out_dir is not None:
            assert _snapshot(out_dir) == before, f"{out_dir} was written by {args}"
        return lines[0]

    return check
