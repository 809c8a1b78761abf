"""`frugal analog ...` end to end on tiny settings, and its error messages."""

import json
import subprocess

import pytest
from typer.testing import CliRunner

from frugalml import cli
from frugalml.analog.run import AnalogRunConfig, analog_training, train
from frugalml.errors import FrugalError
from frugalml.report import record

cli._add_groups()
runner = CliRunner()


def test_devices_json_lists_every_preset_with_a_source():
    r = runner.invoke(cli.app, ["analog", "devices", "--json"])
    assert r.exit_code == 0
    presets = {d["name"]: d for d in json.loads(r.stdout)["devices"]}
    assert set(presets) == {"ideal", "gokmen-vlasov", "ecram", "reram", "pcm"}
    assert presets["gokmen-vlasov"]["states"] == pytest.approx(1200)
    assert all(d["source"] for d in presets.values())


def test_train_json_reports_accuracy_pulses_and_energy(tmp_path, frugal_bin):
    args = ["train", "--preset", "ecram", "--epochs", "1", "--hidden", "16", "--out", str(tmp_path / "run")]
    r = runner.invoke(cli.app, ["analog", *args, "--plot", str(tmp_path / "c.png"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for k in ("accuracy", "digital_accuracy", "pulses", "energy_j", "device", "algorithm"):
        assert k in out
    assert out["device"] == "ecram" and out["algorithm"] == "sgd"
    assert 0.3 < out["accuracy"] <= 1 and 0.3 < out["digital_accuracy"] <= 1
    assert out["pulses"] == out["counts"]["device_pulses"] > 0
    assert out["energy_j"] == pytest.approx(sum(out["energy_parts_j"].values()))
    assert out["digital_energy_j"] > 0
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert (tmp_path / "run" / "result.json").exists()
    rec = record.read(tmp_path / "run")
    assert rec["kind"] == "analog.train" and rec["artifacts"]["result"] == "result.json"
    assert rec["quality"]["accuracy"]["values"] == [out["accuracy"]] and rec["quality"]["accuracy"]["seeds"] == [0]
    assert rec["quality"]["digital_accuracy"]["value"] == out["digital_accuracy"]
    # per inference, digits MLP 64-16-10: 64x16 + 16x10 = 1,184 MACs, one 512x512 array per layer
    assert rec["before"]["macs"] == rec["after"]["macs"] == 1184 == out["digital_cost"]["macs"]
    assert rec["before"]["energy_j"] == pytest.approx(1184 * 4.6e-12)
    # DACs 64 + 16 at 0.1 pJ, ADCs 16 + 10 at 1 pJ, 1,184 device reads at 0.4 fJ
    assert rec["after"]["energy_j"] == pytest.approx(80 * 0.1e-12 + 26 * 1e-12 + 1184 * 0.4e-15)
    assert rec["after"]["latency_s"] == pytest.approx(2 * 80e-9)
    assert rec["spent"]["segments"] == 1 and rec["spent"]["cpu_s"] > 0
    shown = subprocess.run([frugal_bin, "show", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "analog.train" in shown.stdout and "digital_accuracy" in shown.stdout


def test_a_finished_run_resumes_without_training_again(tmp_path):
    cfg = AnalogRunConfig(
        device="gokmen-vlasov", algorithm="tiki-taka", train=analog_training(epochs=1), hidden=(8,), seed=3
    )
    first = train(cfg, tmp_path)
    second = train(cfg, tmp_path)
    assert second["accuracy"] == first["accuracy"]
    assert second["pulses"] == first["pulses"]  # counters live in the checkpoint


def test_sweep_runs_through_the_executor_and_summarises(tmp_path):
    r = runner.invoke(
        cli.app,
        [
            "analog",
            "sweep",
            "--param",
            "states",
            "--values",
            "20,2000",
            "--seeds",
            "0-0",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [s["value"] for s in out["summary"]] == [20, 2000]
    assert (tmp_path / "sweep.json").exists()
    rec = record.read(tmp_path)
    assert rec["kind"] == "analog.sweep" and rec["artifacts"]["sweep"] == "sweep.json"
    assert [p["label"] for p in rec["points"]] == ["sgd states=20", "sgd states=2000"]
    for p, s in zip(rec["points"], out["summary"]):
        assert p["quality"]["accuracy"]["value"] == pytest.approx(s["accuracy_mean"])
        assert p["quality"]["accuracy"]["seeds"] == [0]
        assert p["quality"]["digital_accuracy"]["value"] == pytest.approx(s["digital_mean"])
        assert p["cost"]["energy_j"] == rec["after"]["energy_j"]
    assert rec["quality"]["accuracy"]["value"] == pytest.approx(max(s["accuracy_mean"] for s in out["summary"]))
    assert rec["before"]["macs"] == 64 * 8 + 8 * 10 and rec["after"]["latency_s"] == pytest.approx(160e-9)
    # every cell is a run of its own, with its record
    assert record.read(tmp_path / "digits-gokmen-vlasov-states20-sgd-bl31-e1-s0")["kind"] == "analog.train"


@pytest.mark.parametrize(
    "args,msg",
    [
        (["train", "--states", "0.5"], "larger than its range"),
        (["train", "--algorithm", "adam"], "unknown algorithm"),
        (["train", "--preset", "pcm", "--algorithm", "tiki-taka"], "bidirectional"),
        (["train", "--hidden", "a,b"], "malformed --hidden"),
        (["sweep", "--param", "colour"], "unknown sweep parameter"),
        (["sweep", "--param", "states", "--values", "x"], "malformed --values"),
    ],
)
def test_bad_input_raises_one_line_frugal_error(args, msg):
    r = runner.invoke(cli.app, ["analog", *args])
    assert isinstance(r.exception, FrugalError), r.output
    assert msg in str(r.exception) and "\n" not in str(r.exception)


@pytest.mark.parametrize(
    "args,msg",
    [(["--preset", "flash"], "unknown device preset 'flash'"), (["--bl", "0"], "BL must be an integer >= 1")],
)
def test_bad_input_exits_2_with_one_line(frugal_bin, args, msg):
    p = subprocess.run([frugal_bin, "analog", "train", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0] and "Traceback" not in p.stderr


def test_demo_step_returns_before_after_rows(tmp_path):
    from frugalml.analog.demo import demo

    rows = demo(tmp_path, quick=True, console=None)
    assert [r["metric"] for r in rows] == ["energy (J, modelled)", "test accuracy"]
    assert all(r["technique"] == "analog" and r["before"] > 0 and r["after"] > 0 for r in rows)
    (run,) = [p.parent for p in tmp_path.glob("*/record.json")]
    rec = record.read(run)
    assert rec["kind"] == "analog.train" and rec["quality"]["accuracy"]["value"] == rows[1]["after"]
    assert rec["after"]["energy_j"] < rec["before"]["energy_j"] and rec["spent"]["co2e_g"] > 0


def test_a_killed_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    from frugalml.analog import tile

    cfg = AnalogRunConfig(device="ecram", train=analog_training(epochs=2), hidden=(8,), seed=5)
    straight = train(cfg, tmp_path / "straight")

    real, calls = tile.analog_step, {"n": 0}

    def dying_step(model, lr):
        calls["n"] += 1
        if calls["n"] == 150:  # in the second epoch (135 steps per epoch)
            raise KeyboardInterrupt
        real(model, lr)

    monkeypatch.setattr(tile, "analog_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "killed")
    monkeypatch.setattr(tile, "analog_step", real)
    resumed = train(cfg, tmp_path / "killed")
    assert resumed["analog"]["history"][0]["test_accuracy"] == straight["analog"]["history"][0]["test_accuracy"]
    assert resumed["accuracy"] == straight["accuracy"]
    assert resumed["analog"]["counts"] == straight["analog"]["counts"]


def _frugal(capsys, *args):
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_quick_train_and_sweep_print_the_path_show_and_compare_take(capsys, tmp_path):
    rc, out, _ = _frugal(capsys, "analog", "train", "--quick", "--out", tmp_path / "a")
    assert rc == 0 and out.strip().splitlines()[-1] == f"-> {tmp_path / 'a'}"
    cfg = json.loads((tmp_path / "a" / "result.json").read_text())["config"]
    assert (cfg["train"]["epochs"], cfg["hidden"]) == (1, [32])
    rc, out, _ = _frugal(capsys, "show", tmp_path / "a", "--json")
    assert rc == 0 and json.loads(out)["kind"] == "analog.train"
    # --quick sweeps only the two ends of the grid, one seed; --values given would win
    rc, out, err = _frugal(capsys, "analog", "sweep", "--param", "noise", "--quick", "--out", tmp_path / "s", "--json")
    res = json.loads(out)
    assert rc == 0 and err.strip().splitlines()[-1] == f"-> {tmp_path / 's'}"
    assert (res["values"], res["seeds"]) == ([0.0, 3.0], [0])
    rc, out, _ = _frugal(capsys, "compare", tmp_path / "s", "--json")
    assert rc == 0
