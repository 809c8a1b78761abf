"""Bad values given to `frugal nas`, `frugal pointcloud` and `frugal accel` commands: exit 2, one
line on stderr naming what is wrong, no traceback, and nothing written (issue 18).

Each case runs in process through `frugalml.cli.main` (the shared `assert_bad_input` fixture).
Placeholders: SN a trained tiny supernet (no latency data: a measured target has no predictor,
`rpi4` is modelled and needs none), PC a trained tiny point-cloud model, OUT a fresh directory,
FILE an existing file, NOPE a directory that does not exist. The last element names the
directory that must stay absent or unchanged.
"""

import json

import pytest

NAS = [
    (["nas", "spaces", "--bogus"], "No such option: --bogus", None),
    (["nas", "train", "--epochs", "0", "--quick", "--out", "OUT"], "--epochs must be >= 1, got 0", "OUT"),
    (["nas", "train", "--epochs", "x", "--out", "OUT"], "'--epochs'", "OUT"),
    (["nas", "train", "--space", "nope", "--out", "OUT"], "unknown search space 'nope'", "OUT"),
    (["nas", "train", "--sampling", "both", "--out", "OUT"], "unknown --sampling 'both'", "OUT"),
    (["nas", "train", "--subnets", "-1", "--out", "OUT"], "--subnets must be >= 0", "OUT"),
    (["nas", "train", "--sampling", "progressive", "--epochs", "3", "--out", "OUT"], "at least 4 epochs, got 3", "OUT"),
    (["nas", "train", "--lr", "0", "--out", "OUT"], "--lr must be > 0", "OUT"),
    (["nas", "train", "--quick", "--out", "FILE"], "--out FILE is a file", "FILE"),
    (["nas", "latency", "--run", "NOPE"], "NOPE is not a supernet run directory", "NOPE"),
    (["nas", "latency", "--run", "SN", "--samples", "5"], "--samples must be at least 10", "SN"),
    (["nas", "latency", "--run", "SN", "--samples", "0", "--target", "rpi4"], "--samples must be at least 1", "SN"),
    (["nas", "latency", "--run", "SN", "--target", "cray-1"], "unknown latency target 'cray-1'", "SN"),
    (["nas", "search", "--run", "SN", "--latency-ms", "-1"], "--latency-ms must be > 0", "SN"),
    (["nas", "search", "--run", "SN", "--latency-ms", "0", "--target", "rpi4"], "--latency-ms must be > 0", "SN"),
    (["nas", "search", "--run", "SN", "--latency-ms", "inf", "--target", "rpi4"], "and finite", "SN"),
    (["nas", "search", "--run", "NOPE", "--latency-ms", "1"], "NOPE is not a supernet run directory", "NOPE"),
    (["nas", "search", "--run", "SN", "--latency-ms", "1"], "no latency predictor for 'host-1t'", "SN"),
    (["nas", "search", "--run", "SN", "--latency-ms", "1e-9", "--target", "rpi4"], "smallest achievable", "SN"),
    (["nas", "search", "--run", "SN", "--latency-ms", "1", "--target", "cray-1"], "unknown latency target", "SN"),
    (["nas", "search", "--run", "SN", "--latency-ms", "1", "--population", "0"], "--population must be >= 1", "SN"),
    (["nas", "search", "--run", "SN", "--latency-ms", "1", "--parents", "200"], "--parents must be in 1..125", "SN"),
    (["nas", "search", "--run", "SN", "--latency-ms", "1", "--mutations", "-1"], "--mutations", "SN"),
    (["nas", "search", "--run", "SN", "--latency-ms", "1", "--iterations", "0"], "--iterations must be >= 1", "SN"),
    (["nas", "search", "--run", "SN", "--latency-ms", "1", "--mutate-prob", "2"], "--mutate-prob", "SN"),
    (["nas", "search", "--run", "SN", "--latency-ms", "1", "--speed-check", "-1"], "--speed-check", "SN"),
    (["nas", "pareto", "--run", "NOPE"], "NOPE is not a supernet run directory", "NOPE"),
    (["nas", "pareto", "--run", "SN"], "no latency data for 'host-1t'", "SN"),
    (["nas", "pareto", "--run", "SN", "--target", "rpi4", "--population", "1"], "--population must be >= 2", "SN"),
    (["nas", "pareto", "--run", "SN", "--target", "rpi4", "--generations", "0"], "--generations must be >= 1", "SN"),
    (["nas", "pareto", "--run", "SN", "--target", "cray-1"], "unknown latency target", "SN"),
    (["nas", "export", "--run", "NOPE", "--arch", "FILE", "--out", "OUT"], "NOPE is not a supernet run", "OUT"),
    (["nas", "export", "--run", "SN", "--arch", "NOPE.json", "--out", "OUT"], "file not found", "OUT"),
    (["nas", "export", "--run", "SN", "--arch", "FILE", "--out", "OUT"], "--arch: FILE is not valid JSON", "OUT"),
    (
        ["nas", "export", "--run", "SN", "--arch", "SN", "--out", "OUT"],
        "is not a `frugal nas search` run directory",
        "OUT",
    ),
    (
        ["nas", "export", "--run", "SN", "--arch", "ARCH", "--out", "OUT", "--finetune-epochs", "-1"],
        "--finetune",
        "OUT",
    ),
    (["nas", "export", "--run", "SN", "--arch", "SN/nas.json", "--out", "OUT"], "architecture lacks gene", "OUT"),
    (["nas", "export", "--run", "SN", "--arch", "ARCH", "--out", "FILE"], "--out FILE is a file", "FILE"),
    (["nas", "export", "--run", "SN", "--arch", "ARCH", "--out", "OUT", "--target", "cray-1"], "cray-1", "OUT"),
]

PC = ["--scenes-train", "2", "--scenes-test", "1", "--points", "256"]
POINTCLOUD = [
    (["pointcloud", "train", "--arch", "pointnet", "--out", "OUT"], "unknown --arch 'pointnet'", "OUT"),
    (["pointcloud", "train", "--width", "0", "--out", "OUT"], "--width must be in (0, 4]", "OUT"),
    (["pointcloud", "train", "--voxel", "-1", "--out", "OUT"], "--voxel must be in (0, 5] m", "OUT"),
    (["pointcloud", "train", "--depth", "-1", "--out", "OUT"], "--depth must be >= 0", "OUT"),
    (["pointcloud", "train", "--epochs", "0", *PC, "--out", "OUT"], "--epochs must be >= 1", "OUT"),
    (["pointcloud", "train", "--batch-size", "0", *PC, "--out", "OUT"], "--batch-size must be >= 1", "OUT"),
    (["pointcloud", "train", "--lr", "0", *PC, "--out", "OUT"], "--lr must be > 0", "OUT"),
    (["pointcloud", "train", "--threads", "0", *PC, "--out", "OUT"], "--threads must be >= 1", "OUT"),
    (["pointcloud", "train", "--scenes-train", "0", "--out", "OUT"], "--scenes-train must be >= 1", "OUT"),
    (["pointcloud", "train", "--scenes-test", "0", "--out", "OUT"], "--scenes-test must be >= 1", "OUT"),
    (["pointcloud", "train", "--points", "-5", "--out", "OUT"], "--points must be >= 1", "OUT"),
    (["pointcloud", "train", "--quick", "--out", "FILE"], "--out FILE is a file", "FILE"),
    (["pointcloud", "eval", "--run", "NOPE"], "NOPE is not a point-cloud model directory", "NOPE"),
    (["pointcloud", "eval", "--run", "SN"], "SN is not a point-cloud model directory", "SN"),
    (["pointcloud", "eval", "--run", "PC", "--scans", "NOPE"], "no .bin scans in NOPE", "PC"),
    (["pointcloud", "eval", "--run", "PC", "--limit", "0"], "--limit must be >= 1", "PC"),
    (["pointcloud", "eval", "--run", "PC", "--threads", "0"], "--threads must be >= 1", "PC"),
    (["pointcloud", "eval", "--run", "PC", "--render", "FILE"], "--render FILE: expected a .png", "PC"),
    (["pointcloud", "eval", "--run", "PC", "--out", "FILE"], "--out FILE is a file", "PC"),
    (["pointcloud", "scene", "--beams", "0", "--plot", "OUT/s.png"], "--beams and --azimuths must be >= 1", "OUT"),
    (["pointcloud", "scene", "--azimuths", "-1", "--plot", "OUT/s.png"], "--beams and --azimuths", "OUT"),
    (["pointcloud", "scene", "--seed", "-1", "--plot", "OUT/s.png"], "--seed must be >= 0", "OUT"),
    (["pointcloud", "scene", "--plot", "OUT/s.txt"], "expected a .png file name", "OUT"),
]

ACCEL = [
    (["accel", "energy", "--model", "nope", "--out", "OUT"], "unknown model 'nope'", "OUT"),
    (["accel", "energy", "--accel", "nope", "--out", "OUT"], "'nope': not a shipped spec", "OUT"),
    (["accel", "energy", "--accel", "FILE", "--out", "OUT"], "expected a mapping", "OUT"),
    (["accel", "energy", "--dataflow", "xyz", "--out", "OUT"], "unknown dataflow 'xyz'", "OUT"),
    (["accel", "energy", "--batch-size", "0", "--out", "OUT"], "--batch-size must be positive", "OUT"),
    (["accel", "energy", "--input", "1,x", "--out", "OUT"], "malformed --input", "OUT"),
    (["accel", "energy", "--input", "1,3", "--out", "OUT"], "does not accept input", "OUT"),
    (["accel", "energy", "--layers", "attn", "--out", "OUT"], "--layers must be one of", "OUT"),
    (["accel", "energy", "--objective", "speed", "--out", "OUT"], "unknown --objective 'speed'", "OUT"),
    (["accel", "energy", "--model", "mlp", "--layers", "conv", "--out", "OUT"], "has no conv layers", "OUT"),
    (["accel", "energy", "--plot", "OUT/e.jpg"], "expected a .png file name", "OUT"),
    (["accel", "energy", "--out", "FILE"], "--out FILE is a file", "FILE"),
    (["accel", "compare", "--dataflows", ",", "--out", "OUT"], "--dataflows is empty", "OUT"),
    (["accel", "compare", "--dataflows", "rs,rs", "--out", "OUT"], "names a dataflow twice", "OUT"),
    (["accel", "compare", "--dataflows", "rs,zz", "--out", "OUT"], "unknown dataflow 'zz'", "OUT"),
    (["accel", "compare", "--batch-size", "-1", "--out", "OUT"], "--batch-size must be positive", "OUT"),
    (["accel", "compare", "--model", "nope", "--out", "OUT"], "unknown model 'nope'", "OUT"),
    (["accel", "compare", "--plot", "OUT/c.txt"], "expected a .png file name", "OUT"),
    (["accel", "archs", "--all"], "No such option: --all", None),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """A tiny trained supernet, a tiny trained point-cloud model and a sub-network's arch.json."""
    from frugalml.cli import main
    from frugalml.files import write_json
    from frugalml.models import space as spaces
    from frugalml.nas.supernet import SupernetConfig, supernet_training, train_supernet

    root = tmp_path_factory.mktemp("bad")
    cfg = SupernetConfig(sampling="uniform", quick=True, train=supernet_training(epochs=1, batch_size=128))
    train_supernet(cfg, root / "sn", track=False, progress=False)
    write_json(root / "arch.json", spaces.get("cnn").smallest())
    args = ["pointcloud", "train", "--width", "0.25", "--voxel", "0.8", "--epochs", "1", *PC, "--out"]
    with pytest.raises(SystemExit) as exc:
        main([*args, str(root / "pc"), "--json"])
    assert exc.value.code == 0
    return {"SN": root / "sn", "PC": root / "pc", "ARCH": root / "arch.json"}


def _fill(args, places, tmp_path):
    where = {**{k: str(v) for k, v in places.items()}}
    where |= {"OUT": str(tmp_path / "out"), "FILE": str(tmp_path / "file"), "NOPE": str(tmp_path / "nope")}
    (tmp_path / "file").write_text("not json, not a directory")

    def sub(text):
        for k, v in where.items():
            if text == k or text.startswith(k + "/") or text.startswith(k + "."):
                return v + text[len(k) :]
        return text

    return [sub(a) for a in args], where


@pytest.mark.parametrize(
    "args,needle,watch", NAS + POINTCLOUD + ACCEL, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_bad_values_are_refused_before_anything_is_written(assert_bad_input, places, tmp_path, args, needle, watch):
    args, where = _fill(args, places, tmp_path)
    for k, v in where.items():
        needle = needle.replace(k, v) if k in ("FILE", "NOPE", "SN") else needle
    line = assert_bad_input(args, None if watch is None else where[watch], needle)
    assert line.startswith("frugal: error: ")


def test_cases_cover_every_command_of_the_three_groups():
    from frugalml import cli

    cli._add_groups()
    from frugalml.accel.cli import app as accel
    from frugalml.nas.cli import app as nas
    from frugalml.pointcloud.cli import app as pointcloud

    for group, app, cases in (("nas", nas, NAS), ("pointcloud", pointcloud, POINTCLOUD), ("accel", accel, ACCEL)):
        commands = {c.name or c.callback.__name__ for c in app.registered_commands}
        covered = {args[1] for args, _, _ in cases if args[0] == group}
        assert commands == covered, (group, commands ^ covered)


def test_a_refused_search_leaves_the_supernet_as_it_was_and_json_stays_clean(places, capsys):
    """Under --json too: stdout empty, the one line on stderr."""
    from frugalml.cli import main

    before = sorted(p.name for p in places["SN"].rglob("*"))
    with pytest.raises(SystemExit) as exc:
        main(["nas", "search", "--run", str(places["SN"]), "--latency-ms", "-0.5", "--json"])
    out, err = capsys.readouterr()
    assert (
        exc.value.code == 2
        and out == ""
        and err.strip() == ("frugal: error: --latency-ms must be > 0 and finite (a latency budget in ms), got -0.5")
    )
    assert sorted(p.name for p in places["SN"].rglob("*")) == before
    assert not (places["SN"] / "search").exists()
    json.loads((places["SN"] / "nas.json").read_text())  # untouched, still the run's meta
