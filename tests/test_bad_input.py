"""Bad input to the top-level commands and to tickets, video and analog: exit status 2, one
line on stderr naming the problem, no traceback, and no --out directory written or changed.

Driven in process through `frugalml.cli.main` (the `assert_bad_input` fixture of conftest.py).
"""

import pytest

USAGE = [
    (["tickets", "find", "--epochs", "abc"], "Invalid value for '--epochs'"),
    (["tickets", "find", "--bogus", "1"], "No such option: --bogus"),
    (["nope"], "No such command 'nope'"),
]


@pytest.mark.parametrize("args,needle", USAGE)
def test_usage_errors_are_one_line(assert_bad_input, args, needle):
    line = assert_bad_input(args, None, needle)
    assert line.startswith("frugal: error: ") and "--help" in line
