"""Driving `frugal` in-process as the installed command does (through `cli.main`), for tests
that chain commands on the paths they print. conftest.py puts this directory on sys.path."""

from __future__ import annotations

import pytest

from frugalml.cli import main


def frugal(capsys, *args) -> tuple[str, str]:
    """(stdout, stderr) of a `frugal` command that must succeed."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert exc.value.code == 0, err
    return out, err


def saved(text: str) -> str:
    """The path of the `-> PATH` line, which must be the last line."""
    last = text.strip().splitlines()[-1]
    assert last.startswith("-> "), text
    return last[3:]
