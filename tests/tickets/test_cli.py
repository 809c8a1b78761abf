import json
import subprocess

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
