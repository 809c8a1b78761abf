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


# (args, needle); "OUT" is replaced by a fresh directory under tmp_path, which must stay absent
TOP = [
    (["profile", "--model", "resnet18", "--latency", "--threads", "0"], "--threads"),
    (["profile", "--model", "resnet9000"], "unknown model 'resnet9000'"),
    (["profile", "--model", "mlp", "--by", "layer"], "--by"),
    (["profile", "--model", "mlp", "--input", "1,x"], "malformed --input"),
    (["profile", "--model", "missing_file.py:make"], "missing_file.py"),
    (["estimate", "--flops", "1e20", "--hardware", "cray-1"], "unknown hardware 'cray-1'"),
    (["estimate", "--flops", "1e20", "--hardware", "v100", "--devices", "0"], "devices"),
    (["estimate", "--power-w", "100", "--hours", "-3"], "hours must be positive"),
    (["estimate", "--power-w", "100", "--hours", "3", "--pue", "0.5"], "pue"),
    (["estimate", "--power-w", "100", "--hours", "3", "--intensity", "-1"], "intensity"),
    (["estimate", "--power-w", "100", "--hours", "3", "--region", "XYZ"], "unknown region 'XYZ'"),
    (["track", "--out", "OUT"], "no command given"),
    (["track", "--out", "OUT/track.json", "--", "true"], "directory"),
    (["track", "--pue", "0.5", "--out", "OUT", "--", "true"], "--pue"),
    (["track", "--intensity", "-5", "--out", "OUT", "--", "true"], "intensity"),
    (["track", "--region", "XYZ", "--out", "OUT", "--", "true"], "unknown region 'XYZ'"),
    (["track", "--out", "OUT", "--", "no-such-command-xyz"], "command not found"),
    (["data", "nope"], "unknown dataset"),
    (["demo", "--out", "FILE"], "not a directory"),
    (["report", "OUT"], "OUT"),
    (["show", "OUT"], "no record.json"),
    (["compare", "OUT"], "OUT"),
    (["payback", "OUT", "--inferences-per-day", "1000"], "no record.json"),
    (["payback", "RUN", "--inferences-per-day", "-5"], "inferences"),
    (["payback", "RUN", "--inferences-per-day", "1000", "--days", "0"], "days"),
    (["payback", "RUN", "--inferences-per-day", "1000", "--pue", "0.2"], "--pue"),
    (["compare", "RUN", "--metric", "nonesuch"], "nonesuch"),
]

TICKETS = [
    (
        ["tickets", "find", "--epochs", "0", "--data", "digits", "--levels", "1", "--seeds", "0-0", "--out", "OUT"],
        "epochs",
    ),
    (["tickets", "find", "--levels", "-1", "--out", "OUT"], "levels"),
    (["tickets", "find", "--seeds", "2,1", "--out", "OUT"], "consecutive"),
    (["tickets", "find", "--seeds", "a-b", "--out", "OUT"], "malformed --seeds"),
    (["tickets", "find", "--rate", "1.5", "--out", "OUT"], "pruning rate"),
    (["tickets", "find", "--data", "nope", "--out", "OUT"], "nope"),
    (["tickets", "find", "--model", "nope", "--out", "OUT"], "nope"),
    (["tickets", "find", "--workers", "0", "--out", "OUT"], "workers"),
    (["tickets", "find", "--controls", "reinit,foo", "--out", "OUT"], "unknown control 'foo'"),
    (["tickets", "find", "--rewind", "3x", "--out", "OUT"], "rewind"),
    (["tickets", "find", "--batch-size", "0", "--out", "OUT"], "batch size"),
    (["tickets", "stability", "--run", "OUT", "--level", "1"], "OUT"),
    (["tickets", "stability", "--run", "OUT", "--level", "1", "--points", "2"], "points"),
    (["tickets", "transfer", "--run", "OUT", "--data", "digits"], "OUT"),
    (["tickets", "export", "--run", "OUT"], "OUT"),
    (["tickets", "export", "--run", "OUT", "--format", "nope"], "nope"),
]

VIDEO = [
    (["video", "train", "--clips", "-5", "--out", "OUT"], "clips"),
    (["video", "train", "--test-clips", "0", "--out", "OUT"], "clips"),
    (["video", "train", "--frames", "0", "--out", "OUT"], "frames"),
    (["video", "train", "--epochs", "-1", "--out", "OUT"], "epochs"),
    (["video", "train", "--data", "nope", "--out", "OUT"], "nope"),
    (["video", "train", "--backbone-widths", "a,b", "--out", "OUT"], "malformed --backbone-widths"),
    (["video", "train", "--threads", "-1", "--out", "OUT"], "threads"),
    (["video", "train", "--efficiency-weight", "2", "--out", "OUT"], "efficiency-weight"),
    (["video", "train", "--size", "4", "--out", "OUT"], "resolutions"),
    (["video", "eval", "--run", "OUT"], "OUT"),
    (["video", "eval", "--run", "OUT", "--latency-videos", "0"], "latency-videos"),
]

ANALOG = [
    (["analog", "train", "--preset", "nope", "--out", "OUT"], "nope"),
    (["analog", "train", "--hidden", "0", "--out", "OUT"], "hidden"),
    (["analog", "train", "--hidden", "a", "--out", "OUT"], "malformed --hidden"),
    (["analog", "train", "--epochs", "0", "--out", "OUT"], "epochs"),
    (["analog", "train", "--algorithm", "nope", "--out", "OUT"], "unknown algorithm 'nope'"),
    (["analog", "train", "--states", "-5", "--out", "OUT"], "states"),
    (["analog", "train", "--noise", "-1", "--out", "OUT"], "c2c"),
    (["analog", "train", "--data", "nope", "--out", "OUT"], "nope"),
    (["analog", "train", "--bl", "0", "--out", "OUT"], "BL"),
    (["analog", "sweep", "--param", "nope", "--out", "OUT"], "unknown sweep parameter 'nope'"),
    (["analog", "sweep", "--param", "states", "--values", "a", "--out", "OUT"], "malformed --values"),
    (["analog", "sweep", "--param", "states", "--values", "-10", "--out", "OUT"], "states"),
    (["analog", "sweep", "--param", "states", "--seeds", "x", "--out", "OUT"], "malformed --seeds"),
    (["analog", "sweep", "--param", "states", "--algorithm", "nope", "--out", "OUT"], "unknown algorithm 'nope'"),
    (["analog", "sweep", "--param", "states", "--workers", "0", "--out", "OUT"], "workers"),
    (["analog", "sweep", "--param", "states", "--preset", "nope", "--out", "OUT"], "nope"),
    (["analog", "sweep", "--param", "states", "--data", "nope", "--out", "OUT"], "nope"),
]


@pytest.fixture(scope="module")
def a_run(tmp_path_factory):
    """A run directory holding a record with before/after costs (for payback and compare)."""
    from frugalml.cost.currency import Cost
    from frugalml.report import record

    d = tmp_path_factory.mktemp("run")
    rec = record.build(
        "test",
        quality={"accuracy": record.metric([0.9], [0])},
        before=Cost(macs=100, latency_s=1e-3),
        after=Cost(macs=50, latency_s=5e-4),
        spent={"energy_j": 10.0, "wall_s": 1.0},
    )
    record.write(d, rec)
    return d


def _fill(args, tmp_path, a_run):
    out = tmp_path / "out"
    (tmp_path / "file").write_text("not a directory")
    where = {"OUT": str(out), "RUN": str(a_run), "FILE": str(tmp_path / "file")}
    return [next((a.replace(k, v) for k, v in where.items() if a.startswith(k)), a) for a in args], out


@pytest.mark.parametrize(
    "args,needle", TOP + TICKETS + VIDEO + ANALOG, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_bad_values_are_refused_before_anything_is_written(assert_bad_input, tmp_path, a_run, args, needle):
    args, out = _fill(args, tmp_path, a_run)
    assert_bad_input(args, out, needle.replace("OUT", str(out)))
