"""ONNX export (`frugalml.models.deploy`): onnxruntime agrees with PyTorch; failures are one line, no file."""

import sys

import numpy as np
import pytest
import torch
from torch import nn

from frugalml.errors import FrugalError
from frugalml.models import deploy

pytest.importorskip("onnxruntime")


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5)
    ).eval()


def test_onnx_matches_pytorch_at_every_batch_size(tmp_path):
    import onnxruntime as ort

    net = small_cnn()
    path = deploy.export_onnx(net, torch.randn(1, 2, 4, 4), tmp_path / "m.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file left
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # run independently of deploy
    for b in (1, 3, 7):
        x = torch.randn(b, 2, 4, 4)
        got = sess.run(None, {"x": x.numpy()})[0]
        with torch.no_grad():
            want = net(x).numpy()
        assert got.shape == (b, 5)
        assert np.abs(got - want).max() < 1e-5
    assert deploy.check_onnx(path, net, [torch.randn(2, 2, 4, 4), torch.randn(9, 2, 4, 4)]) < 1e-5


def test_an_operator_onnx_lacks_is_one_line_and_writes_nothing(tmp_path):
    class Eig(nn.Module):
        def forward(self, x):
            return torch.linalg.eigvals(x).real

    with pytest.raises(FrugalError) as e:
        deploy.export_onnx(Eig(), torch.randn(2, 3, 3), tmp_path / "m.onnx")
    assert "linalg_eigvals" in str(e.value) and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_missing_onnxruntime_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(FrugalError) as e:
        deploy.require()
    assert "frugalml[deploy]" in str(e.value)


def test_frugalml_load_runs_an_onnx_file(tmp_path):
    import frugalml

    net = small_cnn()
    path = deploy.export_onnx(net, torch.randn(1, 2, 4, 4), tmp_path / "m.onnx")
    x = torch.randn(4, 2, 4, 4)
    with torch.no_grad():
        assert (frugalml.load(path)(x) - net(x)).abs().max() < 1e-5


def test_batch_of_repeats_examples_to_reach_a_batch():
    x = torch.arange(3.0).reshape(3, 1)
    assert deploy.batch_of(x, 7).flatten().tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert deploy.batch_of(x, 2).flatten().tolist() == [0, 1]


def test_deploy_latency_times_every_runner_in_rounds(tmp_path):
    net = small_cnn()
    path = deploy.export_onnx(net, torch.randn(1, 2, 4, 4), tmp_path / "m.onnx")
    lat = deploy.deploy_latency({"eager": net}, path, {1: torch.randn(1, 2, 4, 4)}, rounds=2, min_run_time=0.01)
    row = lat["1"]
    assert set(row) == {"eager_s", "eager_spread_s", "onnxruntime_s", "onnxruntime_spread_s", "ratios"}
    lo, hi = row["onnxruntime_spread_s"]
    assert 0 < lo <= row["onnxruntime_s"] <= hi
    r = row["ratios"]["onnxruntime/eager"]
    assert r["spread"][0] <= r["ratio"] <= r["spread"][1]
