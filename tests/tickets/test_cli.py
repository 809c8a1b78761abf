import json
import subprocess
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from frugalml import cli
from frugalml.errors import FrugalError
from frugalml.tickets.imp import level_dir
from frugalml.tickets.masks import Mask

cli._add_groups()
runner = CliRunner()


def run(args):
    """Invoke like `frugal`: FrugalError -> exit 2 with one line (as cli.main does)."""
    try:
        return runner.invoke(cli.app, args, catch_exceptions=False)
    except FrugalError as e:
        return e


def test_find_json_is_one_object_with_the_documented_fields(tmp_path):
    res = runner.invoke(
        cli.app,
        [
            "tickets",
            "find",
            "--data",
            "digits",
            "--levels",
            "1",
            "--seeds",
            "0-0",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "r"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    lv = obj["levels"][1]
    assert {"remaining", "accuracy", "reinit_accuracy", "random_accuracy", "macs_effective"} <= set(lv)
    # default rate 0.2 (output layer 0.1): 64x300 and 300x100 keep 80%, 100x10 keeps 90%
    assert lv["remaining"] == pytest.approx((15360 + 24000 + 900) / 50200)
    assert lv["macs_effective"] == 15360 + 24000 + 900
    # each accuracy is the saved network's digits test accuracy, recomputed here
    for level in (0, 1):
        d = tmp_path / "r" / f"level_{level}" / "seed_0"
        assert obj["levels"][level]["accuracy"]["per_seed"] == [_digits_accuracy(d / "weights.safetensors")]
        assert obj["levels"][level]["accuracy"]["mean"] == obj["levels"][level]["accuracy"]["per_seed"][0]
    _check_find_record(tmp_path / "r", obj)


def _digits_accuracy(weights) -> float:
    from safetensors.torch import load_file

    from frugalml import data
    from frugalml.tickets.imp import build_model

    ds = data.get("digits")
    net = build_model("mlp", ds.input_shape, ds.num_classes, 0).eval()
    net.load_state_dict(load_file(str(weights)))
    with torch.no_grad():
        return int((net(ds.x_test).argmax(1) == ds.y_test).sum()) / len(ds.y_test)


def _check_find_record(out, obj):
    """record.json of a find run holds what the run printed: final-level accuracy, dense -> ticket, every level."""
    from frugalml.report import record

    rec = record.read(out)
    assert rec["kind"] == "tickets.find" and rec["data"] == "digits" and rec["model"] == "mlp"
    final, dense = obj["levels"][-1], obj["levels"][0]
    acc = rec["quality"]["accuracy"]
    assert acc["values"] == final["accuracy"]["per_seed"] and acc["seeds"] == obj["seeds"]
    assert acc["value"] == pytest.approx(final["accuracy"]["mean"])
    assert rec["before"]["nonzero_params"] == dense["nonzero_params"] and rec["before"]["macs"] == dense["macs"]
    assert rec["after"]["nonzero_params"] == final["nonzero_params"] < rec["before"]["nonzero_params"]
    assert rec["after"]["macs_effective"] == final["macs_effective"] < rec["before"]["macs_effective"]
    points = rec["points"]
    assert [p["label"] for p in points][0] == "dense" and len(points) == len(obj["levels"])
    for p, lv in zip(points, obj["levels"]):
        assert p["quality"]["accuracy"]["value"] == pytest.approx(lv["accuracy"]["mean"])
        assert p["cost"]["macs_effective"] == lv["macs_effective"]
    assert points[1]["quality"]["random_pruning_accuracy"]["values"] == final["random_accuracy"]["per_seed"]
    assert points[1]["quality"]["reinit_accuracy"]["values"] == final["reinit_accuracy"]["per_seed"]
    assert rec["spent"]["segments"] == 1 and rec["spent"]["cpu_s"] > 0
    for path in rec["artifacts"].values():
        assert (out / path).exists(), path
    shown = runner.invoke(cli.app, ["show", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "tickets.find" in shown.output and "accuracy" in shown.output


class _Proc:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


def _frugal(frugal_bin, *args, capsys=None):
    """`frugal ARGS` in this process through `cli.main` (exit status and stderr as the command gives them)."""
    with pytest.raises(SystemExit) as e:
        cli.main(list(args))
    return _Proc(e.value.code, capsys.readouterr().err)


def _one_line_error(p, needle):
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("frugal: error:") and needle in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_rate_outside_unit_interval_exits_2_from_the_installed_command(frugal_bin, tmp_path):
    p = subprocess.run(
        [frugal_bin, "tickets", "find", "--rate", "1.2", "--out", str(tmp_path)], capture_output=True, text=True
    )
    _one_line_error(p, "(0, 1)")


def test_directory_that_is_not_a_ticket_exits_2(frugal_bin, tmp_path, capsys):
    p = _frugal(frugal_bin, "tickets", "export", "--run", str(tmp_path), capsys=capsys)
    _one_line_error(p, "not a ticket directory")


def test_mask_that_does_not_fit_the_model_exits_2(frugal_bin, tiny_run, tmp_path, capsys):
    import shutil

    out, _ = tiny_run
    bad = tmp_path / "ticket"
    shutil.copytree(level_dir(out, 1, 0), bad, ignore=shutil.ignore_patterns("train", "controls", "export_*"))
    Mask({"features.0.weight": torch.ones(3, 3, dtype=torch.bool)}).save(bad / "mask.safetensors")
    _one_line_error(_frugal(frugal_bin, "tickets", "export", "--run", str(bad), capsys=capsys), "mask")


def test_transfer_to_another_input_size_exits_2_and_names_the_way_out(frugal_bin, tiny_run, capsys):
    out, _ = tiny_run
    p = _frugal(
        frugal_bin,
        "tickets",
        "transfer",
        "--run",
        str(out / "level_1"),
        "--data",
        "mnist1d:num_samples=300",
        capsys=capsys,
    )
    _one_line_error(p, "same input shape")
    p = _frugal(
        frugal_bin,
        "tickets",
        "transfer",
        "--run",
        str(out / "level_1"),
        "--data",
        "mnist1d:num_samples=300",
        "--adapt",
        "resize",
        capsys=capsys,
    )
    _one_line_error(p, "adaptation 'resize' is not supported")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["find", "--rewind", "12"], "rewind"),
        (["find", "--strategy", "random"], "strategy"),
        (["find", "--data", "digits:classes=0-11"], "classes"),
        (["stability", "--run", "/nonexistent", "--level", "1"], "not a ticket run"),
    ],
)
def test_other_bad_input_is_one_line(args, needle, tmp_path):
    e = run(["tickets", *args] + (["--out", str(tmp_path / "x")] if args[0] == "find" else []))
    assert isinstance(e, FrugalError) and needle in str(e) and "\n" not in str(e)


def _in_process(capsys, *args) -> tuple[int, str, str]:
    """`frugal ARGS` through cli.main, in process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def _printed(text: str) -> str:
    last = text.strip().splitlines()[-1]
    assert last.startswith("-> "), text[-500:]
    return last[3:]


def test_quick_find_prints_the_path_stability_and_export_take(capsys, tmp_path):
    out = tmp_path / "quick"
    # --quick: digits, 1 level, seed 0 only; --epochs and --controls given here win over it
    quick = ["tickets", "find", "--quick", "--epochs", "1", "--controls", "random"]
    rc, stdout, _ = _in_process(capsys, *quick, "--out", out)
    assert rc == 0 and _printed(stdout) == str(out)
    cfg = json.loads((out / "config.json").read_text())
    got = (cfg["data"], cfg["levels"], cfg["seeds"], cfg["train"]["epochs"], cfg["controls"])
    assert got == ("digits", 1, 1, 1, ["random"])
    rc, stdout, _ = _in_process(capsys, "tickets", "stability", "--run", _printed(stdout), "--level", "1", "--points=3")
    assert rc == 0 and _printed(stdout) == str(out / "level_1") and (out / "level_1" / "stability.json").exists()
    rc, stdout, err = _in_process(capsys, "tickets", "export", "--run", out / "level_1", "--json")
    res = json.loads(stdout)
    assert rc == 0 and _printed(err) == res["out"] and Path(res["out"]).is_dir()
    for lat in res["latency"].values():  # every latency ratio carries its spread, and says if 1 lies within it
        assert lat["ratio"] == pytest.approx(lat["export_s"] / lat["dense_s"]) and lat["ratio_spread"] >= 0
        assert lat["within_spread"] == (abs(lat["ratio"] - 1) <= lat["ratio_spread"])
    assert len(res["warnings"]) == sum(lat["within_spread"] for lat in res["latency"].values())
    rc, stdout, _ = _in_process(capsys, "tickets", "transfer", "--run", out / "level_1", "--data", "digits:classes=0-4")
    assert rc == 0 and Path(_printed(stdout)).is_dir() and (Path(_printed(stdout)) / "record.json").exists()


def test_ratio_spread_flags_a_ratio_that_its_spread_covers():
    from frugalml.cost.latency import ratio_spread

    r = ratio_spread(0.5, 0.02, 1.0, 0.04)  # 0.5 x (0.02 / 1.0 + 0.04 / 2.0) = 0.02
    assert r == {"ratio": 0.5, "ratio_spread": pytest.approx(0.02), "within_spread": False}
    assert ratio_spread(1.0, 0.1, 1.05, 0.1)["within_spread"] is True  # 0.952 +- 0.093


def test_a_level_below_its_random_control_warns():
    from frugalml.tickets.cli import below_random_warnings

    acc = lambda m: {"mean": m, "std": 0.01}  # noqa: E731
    res = {
        "levels": [
            {"level": 0, "remaining": 1.0, "accuracy": acc(0.9), "random_accuracy": None},
            {"level": 1, "remaining": 0.5, "accuracy": acc(0.88), "random_accuracy": acc(0.85)},
            {"level": 2, "remaining": 0.25, "accuracy": acc(0.80), "random_accuracy": acc(0.83)},
        ]
    }
    (w,) = below_random_warnings(res)
    assert w.startswith("level 2 (25.0% remaining)") and "80.00" in w and "83.00" in w


def test_default_find_announces_its_length_and_quick_does_not(capsys):
    from frugalml.report.console import warn_if_long
    from frugalml.tickets.cli import find_seconds
    from frugalml.tickets.config import TicketConfig, ticket_training

    default = find_seconds(TicketConfig(), workers=1)
    # 2 seeds x (1 + 12 levels x 3 trainings) x 30 epochs x 4000 examples x the measured cost
    assert default == pytest.approx(74 * 30 * 4000 * 6.8e-4)
    assert warn_if_long(default, "tickets find", "basis") is True
    (line,) = capsys.readouterr().err.splitlines()
    assert "tickets find" in line and "1.7 h" in line and "--quick" in line
    quick = TicketConfig(data="digits", levels=1, seeds=1, train=ticket_training(epochs=2))
    assert warn_if_long(find_seconds(quick, 1), "tickets find", "basis") is False and capsys.readouterr().err == ""
