"""`frugal video train / eval` end to end on a tiny run, and bad input -> exit 2, one line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frugalml import cli
from frugalml.report import record
from frugalml.video.demo import demo

FRUGAL = str(Path(sys.executable).parent / "frugal")
TINY = ["--clips", "24", "--test-clips", "8", "--frames", "6", "--epochs", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def runner():
    cli._add_groups()
    return CliRunner()


def test_train_then_eval_json(runner, tmp_path):
    run = tmp_path / "run"
    r = runner.invoke(cli.app, ["video", "train", "--data", "synthetic", *TINY, "--out", str(run), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["config"]["efficiency_weight"] == 0.05 and (run / "final.safetensors").exists()
    rec = record.read(run)
    assert rec["kind"] == "video.train"
    assert rec["quality"]["accuracy"]["value"] == summary["stages"]["stage3"]["test_accuracy"]
    assert rec["quality"]["uniform_accuracy"]["value"] == summary["stages"]["uniform_res64"]["test_accuracy"]
    assert rec["before"]["macs"] == 6 * 9_732_608  # uniform 64 px: 6 frames x the backbone's MACs
    trained_macs = rec["after"]["macs"]  # the policy's choices on the test clips: checked by hand below
    assert rec["after"]["params"] > rec["before"]["params"]
    assert rec["spent"]["segments"] == 1 and rec["spent"]["cpu_s"] > 0
    r = runner.invoke(cli.app, ["video", "eval", "--run", str(run), "--latency-videos", "3", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)  # exactly one JSON object on stdout
    for key in ("accuracy", "gflops_per_video", "ms_per_video", "action_usage", "evidence", "baselines"):
        assert key in res
    assert set(res["baselines"]) == {"uniform_64", "uniform_32", "random", "oracle"}
    for b in res["baselines"].values():
        assert {"accuracy", "gflops_per_video", "ms_per_video"} <= set(b)
    # uniform full resolution: 6 frames x the default 64 px backbone (9,732,608 MACs per frame, see test_model)
    assert res["baselines"]["uniform_64"]["gflops_per_video"] == pytest.approx(6 * 2 * 9_732_608 / 1e9)
    assert sum(v for k, v in res["action_usage"].items() if k != "frames_skipped_over") == pytest.approx(1.0)
    assert res["gflops_per_video"] == pytest.approx(_adaptive_gflops(res))
    assert round(res["gflops_per_video"] * 1e9 / 2) == trained_macs  # same policy, same clips as the train record
    assert (run / "eval.json").exists() and (run / "choices.png").stat().st_size > 1000
    rec = record.read(run)  # the evaluation's record replaces the training's, with its figures
    assert rec["kind"] == "video.eval" and rec["artifacts"]["eval"] == "eval.json"
    assert rec["quality"]["accuracy"]["value"] == res["accuracy"]
    assert rec["quality"]["uniform_accuracy"]["value"] == res["baselines"]["uniform_64"]["accuracy"]
    assert rec["before"]["macs"] == 6 * 9_732_608 and rec["after"]["macs"] == round(res["gflops_per_video"] * 1e9 / 2)
    assert rec["before"]["latency_s"] == pytest.approx(res["baselines"]["uniform_64"]["ms_per_video"] / 1e3)
    assert rec["after"]["latency_s"] == pytest.approx(res["ms_per_video"] / 1e3)
    assert rec["before"]["params"] > 0
    assert [p["label"] for p in rec["points"]] == ["adaptive", *res["baselines"]]
    oracle = next(p for p in rec["points"] if p["label"] == "oracle")
    assert oracle["quality"]["accuracy"]["value"] == res["baselines"]["oracle"]["accuracy"]
    assert rec["spent"]["segments"] == 2  # training + this evaluation
    shown = run_frugal("show", str(run))
    assert shown.returncode == 0, shown.stderr
    assert "video.eval" in shown.stdout and "accuracy" in shown.stdout


def _adaptive_gflops(res: dict) -> float:
    """FLOPs per video by hand from the action shares: frames decided x share of each backbone x its
    per-frame FLOPs, plus the policy (CNN + step) on every frame."""
    f = res["flops"]
    usage = list(res["action_usage"].values())  # backbones first, in resolution order
    decided = f["frames"] * (1 - res["action_usage"]["frames_skipped_over"])
    backbones = sum(share * flops for share, flops in zip(usage, f["backbone_flops"]))
    return (decided * backbones + f["frames"] * (f["policy_cnn_flops"] + f["policy_step_flops"])) / 1e9


def run_frugal(*args):
    return subprocess.run([FRUGAL, *args], capture_output=True, text=True, timeout=120)


def test_bad_input_exits_2_with_one_line(tmp_path):
    nothing = tmp_path / "noclasses"
    nothing.mkdir()
    r = run_frugal("video", "train", "--data", str(nothing), "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "no class folders" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = run_frugal("video", "eval", "--run", str(tmp_path))
    assert r.returncode == 2 and "not a video run directory" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_frugal("video", "train", "--backbone-widths", "32,x", "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "--backbone-widths" in r.stderr and "Traceback" not in r.stderr


def test_demo_step_returns_before_after_rows(tmp_path):
    rows = demo(tmp_path / "demo", quick=True, console=None)
    assert [r["metric"] for r in rows] == ["GFLOPs/video", "ms/video", "accuracy"]
    rec = record.read(tmp_path / "demo")
    assert rec["kind"] == "video.eval" and rec["quality"]["accuracy"]["value"] == rows[2]["after"]
    assert rec["after"]["latency_s"] == pytest.approx(rows[1]["after"] / 1e3)
    assert rec["before"]["macs"] * 2 == pytest.approx(rows[0]["before"] * 1e9)
    p = run_frugal("payback", str(tmp_path / "demo"), "--inferences-per-day", "1000", "--json")
    assert p.returncode == 0, p.stderr
    assert "break_even_inferences" in json.loads(p.stdout)
    ev = json.loads((tmp_path / "demo" / "eval.json").read_text())
    assert rows[0]["after"] == pytest.approx(_adaptive_gflops(ev))  # the demo's FLOPs, by hand
    assert rows[0]["before"] == pytest.approx(ev["flops"]["frames"] * ev["flops"]["backbone_flops"][0] / 1e9)


def test_train_prints_the_path_eval_takes(capsys, tmp_path):
    out = tmp_path / "v"
    small = ["--clips", "16", "--test-clips", "8", "--frames", "6", "--threads", "1"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main(["video", "train", "--quick", *small, "--out", str(out)])
    stdout = capsys.readouterr().out
    assert e.value.code == 0 and stdout.strip().splitlines()[-1] == f"-> {out}"
    cfg = json.loads((out / "config.json").read_text())  # --quick's stage epochs and widths, our clip counts
    assert (cfg["n_train"], cfg["backbone"]["epochs"], cfg["backbone_widths"]) == (16, 1, [8, 16, 32])
    with pytest.raises(SystemExit) as e:
        cli.main(["video", "eval", "--run", str(out), "--latency-videos", "3", "--json"])
    std = capsys.readouterr()
    res = json.loads(std.out)
    assert e.value.code == 0 and std.err.strip().splitlines()[-1] == f"-> {out}"
    # 16 clips, 1 epoch a stage: whatever it learnt, the warnings are exactly what the figures say
    from frugalml.video.cli import collapse_warnings, latency_warnings

    assert res["warnings"] == collapse_warnings(res) + latency_warnings(res["latency"])
    assert all(w in std.err for w in res["warnings"])
    q1, q3 = res["latency"]["adaptive_over_uniform_full_quartiles"]
    assert q1 <= res["latency"]["adaptive_over_uniform_full_median"] <= q3


def test_collapsed_policy_and_chance_accuracy_warn():
    from frugalml.video.cli import collapse_warnings

    usage = {"res64": 0.97, "res32": 0.02, "skip": 0.01, "frames_skipped_over": 0.99}
    healthy = {"res64": 0.5, "res32": 0.3, "skip": 0.2, "frames_skipped_over": 0.99}
    assert collapse_warnings({"num_classes": 4, "test_clips": 500, "accuracy": 0.9, "action_usage": healthy}) == []
    near, collapsed = collapse_warnings({"num_classes": 4, "test_clips": 500, "accuracy": 0.27, "action_usage": usage})
    assert "near chance (0.250 for 4 classes)" in near and "'res64' takes 97.0%" in collapsed


def test_latency_ratio_within_its_quartiles_warns():
    from frugalml.video.cli import latency_warnings

    lat = {"adaptive_over_uniform_full_median": 0.95, "adaptive_over_uniform_full_quartiles": [0.8, 1.1]}
    clear = {"adaptive_over_uniform_full_median": 0.5, "adaptive_over_uniform_full_quartiles": [0.45, 0.6]}
    assert latency_warnings(clear | {"batched": clear}) == []
    (w,) = latency_warnings(clear | {"batched": lat})
    assert "batched 0.950 (quartiles 0.800-1.100)" in w


def test_default_train_announces_its_length():
    from frugalml.video.cli import train_seconds
    from frugalml.video.config import VideoConfig

    seconds, command, basis = train_seconds(VideoConfig())
    assert seconds == pytest.approx(1000 * (3 * 6 + 3 * 12 + 3 * 3 + 3 * 3) * 0.03) and seconds > 600
    assert basis == "1000 clips x 6+12+3 stage epochs"
