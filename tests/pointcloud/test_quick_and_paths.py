"""`frugal pointcloud` as a practitioner chains it (issue 18): `train --quick` is smoke-sized,
each command ends with `-> PATH`, and `eval --run` takes the path `train` printed."""

import json

from clirun import frugal, saved

from frugalml.pointcloud import cli as pc_cli


def test_quick_train_then_eval_of_the_printed_path(tmp_path, capsys):
    out, _ = frugal(capsys, "pointcloud", "train", "--quick", "--points", "300", "--out", tmp_path / "m")
    model = saved(out)
    assert model == str(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    quick = pc_cli.QUICK_TRAIN
    # --points given: it wins; the other sizes are --quick's
    assert meta["data"] == {
        "name": "lidar",
        "scenes_train": quick["scenes_train"],
        "scenes_test": quick["scenes_test"],
        "points": 300,
        "seed": 0,
    }
    assert f"trained {quick['epochs']} epochs" in out

    out, _ = frugal(capsys, "pointcloud", "eval", "--run", model)
    assert saved(out) == str(tmp_path / "m" / "eval") and (tmp_path / "m" / "eval" / "record.json").is_file()
    cost = next(line for line in out.splitlines() if "MMACs" in line)
    assert "(median, IQR " in cost  # the latency comes with its spread

    out, err = frugal(capsys, "pointcloud", "eval", "--run", model, "--out", tmp_path / "e2", "--json")
    assert json.loads(out)["run_dir"] == saved(err) == str(tmp_path / "e2")


def test_scene_ends_with_the_png_it_wrote(tmp_path, capsys):
    png = tmp_path / "s.png"
    out, _ = frugal(capsys, "pointcloud", "scene", "--beams", "4", "--azimuths", "30", "--plot", png)
    assert saved(out) == str(png) and png.read_bytes()[:4] == b"\x89PNG"
