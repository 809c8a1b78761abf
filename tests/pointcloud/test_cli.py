"""`frugal pointcloud ...` and `frugal nas train --space pointvoxel` through the CLI."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from frugalml import cli
from frugalml.data import pointcloud as pc
from frugalml.errors import FrugalError

cli._add_groups()
runner = CliRunner()
PINNED_MACS = 3_358_432


def run(*args):
    return runner.invoke(cli.app, list(args))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pc") / "m"
    r = run(
        "pointcloud",
        "train",
        "--width",
        "0.25",
        "--voxel",
        "0.8",
        "--epochs",
        "1",
        "--scenes-train",
        "2",
        "--scenes-test",
        "1",
        "--points",
        "256",
        "--out",
        str(out),
        "--json",
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["model_dir"] == str(out) and 0 <= res["miou"] <= 1
    return out


def show(run_dir):
    from frugalml.report import record

    r = run("show", str(run_dir))
    assert r.exit_code == 0, r.output
    return record.read(run_dir), r.stdout


def test_train_writes_a_record_with_the_miou_it_saved(model_dir):
    rec, shown = show(model_dir)
    saved = json.loads((model_dir / "model.json").read_text())["result"]
    assert rec["kind"] == "pointcloud.train" and "pointcloud.train" in shown and "miou" in shown
    assert rec["quality"]["miou"]["value"] == pytest.approx(saved["miou"])
    assert rec["quality"]["accuracy"]["value"] == pytest.approx(saved["accuracy"])
    from frugalml.pointcloud.train import load_model

    net = load_model(model_dir)[0]
    assert rec["before"] is None and rec["after"]["params"] == sum(p.numel() for p in net.parameters()) == 137_665
    # pinned: traced MACs of one 256-point test scene at width 0.25, voxel 0.8 (depends on voxel occupancy)
    assert rec["after"]["macs"] == PINNED_MACS
    assert rec["spent"]["cpu_s"] > 0 and rec["spent"]["segments"] == 1
    assert (model_dir / rec["artifacts"]["weights"]).is_file()


def test_eval_json_reports_miou_per_class_macs_and_latency(model_dir, tmp_path):
    png = tmp_path / "top.png"
    r = run("pointcloud", "eval", "--run", str(model_dir), "--render", str(png), "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)  # exactly one JSON object
    assert set(res["per_class_iou"]) == set(pc.CLASSES)
    present = [v for v in res["per_class_iou"].values() if v is not None]
    assert res["miou"] == pytest.approx(sum(present) / len(present))
    assert res["macs"] == PINNED_MACS and res["params"] == 137_665  # the same scene size as the train record
    assert res["latency_ms"] > 0 and res["points"] == 256
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rec, shown = show(res["run_dir"])
    assert res["run_dir"] == str(model_dir / "eval")
    assert rec["kind"] == "pointcloud.eval" and "pointcloud.eval" in shown and "miou" in shown
    assert rec["quality"]["miou"]["value"] == pytest.approx(res["miou"])
    after = rec["after"]
    assert after["macs"] == res["macs"] and after["params"] == res["params"]
    assert after["latency_s"] == pytest.approx(res["latency_ms"] / 1e3) and "measured" in after["notes"]["latency_s"]
    assert (model_dir / "eval" / rec["artifacts"]["render"]).resolve() == png.resolve()


def test_eval_on_semantickitti_files_handles_an_empty_scan(model_dir, tmp_path):
    seq = tmp_path / "seq"
    scene = pc.make_scene(11, beams=8, azimuths=90)
    pc.write_scan(scene, seq / "velodyne" / "000000.bin", seq / "labels" / "000000.label")
    (seq / "velodyne" / "000001.bin").write_bytes(b"")
    (seq / "labels" / "000001.label").write_bytes(b"")
    r = run("pointcloud", "eval", "--run", str(model_dir), "--scans", str(seq), "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["scans"] == 2 and res["empty_scans"] == 1 and res["points"] > 100


def test_malformed_pair_names_the_file(model_dir, tmp_path):
    # through the runner FrugalError surfaces as the exception; `cli.main` turns it into exit 2 (tested below)
    seq = tmp_path / "bad"
    (seq / "velodyne").mkdir(parents=True)
    (seq / "labels").mkdir()
    np.zeros((5, 4), "<f4").tofile(seq / "velodyne" / "000007.bin")
    np.zeros(6, "<u4").tofile(seq / "labels" / "000007.label")
    r = run("pointcloud", "eval", "--run", str(model_dir), "--scans", str(seq))
    assert isinstance(r.exception, FrugalError)
    assert "000007.label: 6 labels but the matching .bin has 5 points" in str(r.exception)


def test_bad_input_exits_2_with_one_line(tmp_path):
    for args in (["pointcloud", "train", "--arch", "pointnet"], ["pointcloud", "eval", "--run", str(tmp_path)]):
        r = run(*args)
        assert isinstance(r.exception, FrugalError)
        assert "\n" not in str(r.exception).strip()


def test_real_command_exits_2_with_one_line_naming_the_bad_file(model_dir, tmp_path):
    import subprocess
    import sys

    np.zeros((5, 4), "<f4").tofile(tmp_path / "a.bin")
    np.zeros(6, "<u4").tofile(tmp_path / "a.label")
    code = "from frugalml.cli import main; main()"
    p = subprocess.run(
        [sys.executable, "-c", code, "pointcloud", "eval", "--run", str(model_dir), "--scans", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().count("\n") == 0 and "a.label: 6 labels but the matching .bin has 5 points" in p.stderr
    assert p.stdout == ""


def test_scene_command_writes_a_png(tmp_path):
    r = run(
        "pointcloud",
        "scene",
        "--seed",
        "2",
        "--beams",
        "8",
        "--azimuths",
        "90",
        "--plot",
        str(tmp_path / "s.png"),
        "--json",
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["points"] == sum(res["per_class_points"].values()) > 0
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_nas_train_accepts_the_pointvoxel_space(tmp_path):
    out = str(tmp_path / "sn")
    r = run("nas", "train", "--space", "pointvoxel", "--quick", "--epochs", "1", "--out", out, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["space"] == "pointvoxel" and res["params"] > 0
    rec, text = show(out)
    assert rec["kind"] == "nas.train" and "nas.train" in text
    assert rec["quality"]["accuracy"]["value"] == pytest.approx(res["final"]["test_accuracy"])
    assert rec["after"]["params"] == res["params"]
