"""`frugal nas export --format onnx --data my.npz`: the sub-network in onnxruntime matches PyTorch."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from clirun import frugal

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def supernet(tmp_path_factory):
    from frugalml.cli import main

    out = tmp_path_factory.mktemp("nas") / "sn"
    with pytest.raises(SystemExit) as e:
        main(["nas", "train", "--epochs", "1", "--sampling", "uniform", "--quick", "--out", str(out)])
    assert e.value.code == 0
    return out


def user_npz(path: Path, shape=(40,)) -> Path:
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.normal(size=(120, *shape)).astype(np.float32),
        y_train=rng.integers(0, 10, 120),
        x_test=rng.normal(size=(50, *shape)).astype(np.float32),
        y_test=rng.integers(0, 10, 50),
    )
    return path


def test_nas_export_onnx_on_user_data(supernet, tmp_path, capsys):
    import onnxruntime as ort

    import frugalml
    from frugalml.nas.supernet import load_supernet

    space, _, _ = load_supernet(supernet)
    (tmp_path / "a.json").write_text(json.dumps(space.smallest()))
    npz = user_npz(tmp_path / "u.npz")
    args = ["nas", "export", "--run", supernet, "--arch", tmp_path / "a.json", "--out", tmp_path / "exp"]
    out, _ = frugal(capsys, *args, "--format", "onnx", "--data", npz, "--json")
    res = json.loads(out)
    exp = Path(res["out"])
    dep = res["deploy"]
    assert dep["onnx_max_abs_diff"] <= 1e-4 and set(dep["latency"]) == {"1", "256"}
    assert {"largest_s", "export_s", "onnxruntime_s"} <= set(dep["latency"]["256"])
    z = np.load(npz)
    module = frugalml.load(exp)
    sess = ort.InferenceSession(str(exp / "model.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": z["x_test"]})[0]
    with torch.no_grad():
        want = module(torch.from_numpy(z["x_test"])).numpy()
    assert np.abs(got - want).max() <= 1e-4
    # the test accuracy is on the user's test split: recompute it from the ONNX outputs
    assert dep["accuracy_onnx"] == pytest.approx(float((got.argmax(1) == z["y_test"]).mean()))
    assert res["test_accuracy"] == pytest.approx(float((want.argmax(1) == z["y_test"]).mean()))
    rec = json.loads((exp / "record.json").read_text())
    assert rec["artifacts"]["onnx"] == "model.onnx" and rec["config"]["data"] == str(npz)


def test_nas_export_refuses_data_of_another_shape(supernet, tmp_path, assert_bad_input):
    from frugalml.nas.supernet import load_supernet

    space, _, _ = load_supernet(supernet)
    (tmp_path / "a.json").write_text(json.dumps(space.smallest()))
    npz = user_npz(tmp_path / "u.npz", shape=(3, 8))
    args = ["nas", "export", "--run", supernet, "--arch", tmp_path / "a.json", "--out", tmp_path / "exp"]
    assert_bad_input([*args, "--data", npz], tmp_path / "exp", "examples of shape (3, 8); this space takes (40,)")
    assert not (tmp_path / "exp").exists()
