"""Your own model and data through tickets: find on a user residual CNN and a user .npz, export to ONNX."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from clirun import frugal, saved

pytest.importorskip("onnxruntime")
HERE = Path(__file__).parent


def digits_npz(path: Path, n_train=200, n_test=60) -> Path:
    """Digits 0-3 as 1x8x8 images in [0, 1], labels 0..3: a user's own arrays."""
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = d.target < 4
    x = (d.images[keep] / 16.0).astype(np.float32)[:, None]
    y = d.target[keep]
    np.savez(
        path,
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train : n_train + n_test],
        y_test=y[n_train : n_train + n_test],
    )
    return path


@pytest.fixture
def user_path(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))  # `user_models` importable, as the user's own module would be


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return digits_npz(tmp_path_factory.mktemp("data") / "my.npz")


def test_find_then_onnx_export_on_a_user_resnet_and_npz(user_path, npz, tmp_path, capsys):
    import onnxruntime as ort
    from user_models import TinyResNet

    import frugalml
    from frugalml.train import load_weights

    out, _ = frugal(
        capsys,
        "tickets",
        "find",
        "--model",
        "user_models:my_resnet",
        "--data",
        npz,
        "--quick",
        "--out",
        tmp_path / "run",
    )
    run = Path(saved(out))
    res = json.loads(
        frugal(capsys, "tickets", "export", "--run", run / "level_1", "--format", "onnx", "--json")[0].split("\n-> ")[0]
    )
    exp = Path(res["out"])
    assert res["onnx_max_abs_diff"] <= 1e-4
    assert set(res["latency"]) == {"1", "256"}
    for lat in res["latency"].values():
        assert {"dense_s", "export_s", "onnxruntime_s"} <= set(lat)
    # independently: the ticket's weights in a fresh copy of the user's class, against the ONNX file in onnxruntime
    net = TinyResNet().eval()
    load_weights(net, run / "level_1" / "seed_0" / "weights.safetensors")
    z = np.load(npz)
    sess = ort.InferenceSession(str(exp / "model.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": z["x_test"]})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(z["x_test"])).numpy()
        again = frugalml.load(exp)(torch.from_numpy(z["x_test"])).numpy()
    assert np.abs(got - want).max() <= 1e-4
    assert np.abs(again - want).max() <= 1e-6
    assert res["accuracy_onnx"] == pytest.approx(float((got.argmax(1) == z["y_test"]).mean()))
    rec = json.loads((exp / "record.json").read_text())
    assert rec["quality"]["onnx_max_abs_diff"]["value"] == res["onnx_max_abs_diff"]
    assert rec["artifacts"]["onnx"] == "model.onnx"
    assert not [p for p in exp.parent.iterdir() if ".tmp-" in p.name]


def test_a_factory_taking_no_size_arguments_on_flat_data(user_path, tmp_path, capsys):
    from frugalml import models
    from frugalml.data import get

    z = dict(np.load(digits_npz(tmp_path / "flat.npz")))
    np.savez(tmp_path / "flat.npz", **{k: v.reshape(len(v), -1) if k.startswith("x") else v for k, v in z.items()})
    net = models.for_data("user_models:my_mlp", get(str(tmp_path / "flat.npz")))
    assert net(torch.zeros(2, 64)).shape == (2, 4)


BAD = [
    (lambda a: a.pop("x_test"), "lacks x_test"),
    (lambda a: a.update(y_test=a["y_test"] + 3), "is outside 0..3"),
    (lambda a: a.update(y_train=a["y_train"][:-1]), "x_train has 200 examples but y_train has 199 labels"),
    (lambda a: a.update(x_train=a["x_train"].astype(str)), "array 'x_train' is not numeric"),
]


def _quick_find(data, out) -> list:
    return ["tickets", "find", "--model", "user_models:my_resnet", "--data", data, "--quick", "--out", out]


@pytest.mark.parametrize("spoil,needle", BAD, ids=["missing", "range", "lengths", "dtype"])
def test_bad_user_data_is_refused_before_anything_is_written(spoil, needle, user_path, npz, tmp_path, assert_bad_input):
    a = dict(np.load(npz))
    spoil(a)
    np.savez(tmp_path / "bad.npz", **a)
    assert_bad_input(_quick_find(tmp_path / "bad.npz", tmp_path / "run"), tmp_path / "run", needle)


def test_a_model_whose_outputs_do_not_fit_the_classes_is_refused(user_path, tmp_path, assert_bad_input):
    z = dict(np.load(digits_npz(tmp_path / "d.npz")))
    np.savez(tmp_path / "six.npz", **z, num_classes=np.array(6))
    assert_bad_input(_quick_find(tmp_path / "six.npz", tmp_path / "run"), tmp_path / "run", "expected (2, 6)")


def test_an_op_onnx_cannot_export_is_one_line_and_leaves_no_export(user_path, npz, tmp_path, capsys, assert_bad_input):
    models_file = HERE / "user_models.py"
    out, _ = frugal(
        capsys,
        "tickets",
        "find",
        "--model",
        f"{models_file}:eigen_net",
        "--data",
        npz,
        "--quick",
        "--controls",
        "none",
        "--out",
        tmp_path / "run",
    )
    ticket = Path(saved(out)) / "level_1" / "seed_0"
    before = sorted(p.name for p in ticket.iterdir())
    assert_bad_input(
        ["tickets", "export", "--run", ticket, "--format", "onnx", "--out", tmp_path / "exp"],
        tmp_path / "exp",
        "linalg_eigvals",
    )
    assert not (tmp_path / "exp").exists()
    assert sorted(p.name for p in ticket.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_sparse_export_keeps_csr_only_where_it_measured_faster(tiny_run, tmp_path):
    from frugalml.tickets.exporting import export

    out, _ = tiny_run
    res = export(out / "level_2" / "seed_0", "sparse", out=tmp_path / "sp", batch_sizes=(1, 8))
    layers = res["layers"]
    assert [r["layer"] for r in layers] == list(res["arch"]["kernels"])
    for r in layers:
        assert r["kernel"] == res["arch"]["kernels"][r["layer"]]
        assert r["kernel"] == ("csr" if r["csr_s"] < r["dense_s"] else "dense")
        assert r["csr_over_dense"] == pytest.approx(r["csr_s"] / r["dense_s"])
    rec = json.loads((tmp_path / "sp" / "record.json").read_text())
    notes = rec["after"]["notes"]["kernels"]
    assert all(f"{r['layer']} {r['kernel']} (CSR" in notes for r in layers)


def test_onnx_export_of_an_mlp_ticket_is_the_compact_network(tiny_run, tmp_path):
    import onnx

    from frugalml.tickets.exporting import export

    out, _ = tiny_run
    res = export(out / "level_2" / "seed_0", "onnx", out=tmp_path / "ox", measure=False)
    assert res["arch"]["torch"] == "compact" and res["onnx_max_abs_diff"] <= 1e-4
    assert res["accuracy_onnx"] == pytest.approx(res["accuracy_dense"], abs=1 / 300)
    graph = onnx.load(str(tmp_path / "ox" / "model.onnx")).graph
    shapes = sorted(tuple(t.dims) for t in graph.initializer if len(t.dims) == 2)
    hidden = res["arch"]["kwargs"]["hidden"]  # the compact widths are the ONNX weight shapes
    assert (hidden[0], 64) in shapes and (10, hidden[-1]) in shapes
    assert "latency" not in res
