"""Your own data (`frugalml.data.user`): .npz / .pt files and module:loader, checked on the way in."""

import numpy as np
import pytest
import torch

from frugalml import data
from frugalml.data import user
from frugalml.errors import FrugalError


def arrays(n_train=12, n_test=6, classes=3, shape=(2, 4, 4), seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.normal(size=(n_train, *shape)).astype(np.float64),
        "y_train": np.arange(n_train) % classes,
        "x_test": rng.normal(size=(n_test, *shape)).astype(np.float32),
        "y_test": np.arange(n_test) % classes,
    }


def test_npz_round_trip_converts_types_and_infers_classes(tmp_path):
    a = arrays() | {"x_val": np.ones((4, 2, 4, 4)), "y_val": np.array([0, 1, 2, 1], dtype=np.int32)}
    np.savez(tmp_path / "my.npz", **a)
    ds = data.get(str(tmp_path / "my.npz"))
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert torch.allclose(ds.x_train, torch.tensor(a["x_train"], dtype=torch.float32))
    assert ds.y_test.tolist() == [0, 1, 2, 0, 1, 2]
    assert ds.num_classes == 3 and ds.input_shape == (2, 4, 4)
    assert ds.info["y_val"].tolist() == [0, 1, 2, 1] and ds.info["x_val"].shape == (4, 2, 4, 4)


def test_num_classes_array_overrides_the_largest_label(tmp_path):
    np.savez(tmp_path / "d.npz", **arrays(classes=2), num_classes=np.array(5))
    assert data.get(str(tmp_path / "d.npz")).num_classes == 5


def test_pt_file_and_module_loaders_give_the_same_data(tmp_path, monkeypatch):
    a = arrays()
    torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in a.items()}, tmp_path / "d.pt")
    np.savez(tmp_path / "d.npz", **a)
    (tmp_path / "mydata.py").write_text(
        "import numpy as np\n"
        f"def load():\n    z = np.load({str(tmp_path / 'd.npz')!r})\n    return {{k: z[k] for k in z.files}}\n"
        "def as_dataset():\n    from frugalml.data import get\n"
        f"    return get({str(tmp_path / 'd.npz')!r})\n"
    )
    monkeypatch.chdir(tmp_path)
    got = [data.get(s) for s in ("d.pt", "mydata:load", "mydata.py:as_dataset", "d.npz")]
    for ds in got[:3]:
        assert torch.equal(ds.x_train, got[3].x_train) and torch.equal(ds.y_test, got[3].y_test)
        assert ds.num_classes == 3


def test_specs_tell_generators_from_user_data():
    assert not user.is_user("digits")
    assert not user.is_user("digits:classes=0-4")
    assert not user.is_user("mnist1d:shear_scale=1.2,corr_noise_scale=0.5")
    assert user.is_user("my.npz") and user.is_user("data/train.pt") and user.is_user("mydata:load")
    assert user.slug("runs/x/my.npz") == "my" and user.slug("pkg.mod:load") == "pkg_load"


def test_tasks_load_user_data(tmp_path):
    from frugalml.tickets import tasks

    np.savez(tmp_path / "t.npz", **arrays())
    ds = tasks.load(str(tmp_path / "t.npz"))
    assert ds.num_classes == 3 and len(ds.y_train) == 12
    assert tasks.parse(str(tmp_path / "t.npz")) == (str(tmp_path / "t.npz"), {}, None)


BAD = [
    (lambda a: a.pop("y_test"), "lacks y_test"),
    (lambda a: a.update(y_test=np.array([0, 1, 2, 0, 1, 7])), "label 7 in y_test is outside 0..2"),
    (lambda a: a.update(y_train=np.arange(12) % 3 - 1), "label -1 in y_train is outside 0..1"),
    (lambda a: a.update(y_train=np.arange(11) % 3), "x_train has 12 examples but y_train has 11 labels"),
    (lambda a: a.update(x_test=np.full((6, 2, 4, 4), "a")), "array 'x_test' is not numeric"),
    (lambda a: a.update(y_train=(np.arange(12) % 3).astype(np.float32)), "labels y_train must be integers"),
    (lambda a: a.update(x_test=np.zeros((6, 2, 4, 5))), "x_test examples have shape (2, 4, 5)"),
    (lambda a: a["x_train"].__setitem__((0, 0, 0, 0), np.nan), "x_train holds NaN"),
    (lambda a: a.update(x_val=np.zeros((2, 2, 4, 4))), "has x_val without y_val"),
    (lambda a: a.update(y_test=np.zeros((6, 2), dtype=int)), "y_test has shape (6, 2)"),
]


@pytest.mark.parametrize("spoil,needle", BAD, ids=[b[1][:24] for b in BAD])
def test_bad_arrays_are_one_line_naming_the_problem(spoil, needle, tmp_path):
    a = arrays()
    spoil(a)
    np.savez(tmp_path / "bad.npz", **a)
    with pytest.raises(FrugalError) as e:
        data.get(str(tmp_path / "bad.npz"))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_unreadable_sources_are_one_line(tmp_path):
    np.savez(tmp_path / "obj.npz", x_train=np.array([{"a": 1}], dtype=object))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    for spec, needle in [
        (tmp_path / "obj.npz", "object (non-numeric) array"),
        (tmp_path / "junk.pt", "cannot read data file"),
        (tmp_path / "none.npz", "not found"),
    ]:
        with pytest.raises(FrugalError) as e:
            data.get(str(spec))
        assert needle in str(e.value) and "\n" not in str(e.value)


def flat_digits(path, n_train=60, n_test=21):
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(
        path,
        x_train=d.data[:n_train] / 16,
        y_train=d.target[:n_train],
        x_test=d.data[n_train : n_train + n_test] / 16,
        y_test=d.target[n_train : n_train + n_test],
    )
    return path


def test_analog_train_runs_on_user_data(tmp_path, capsys):
    import json

    from clirun import frugal

    npz = flat_digits(tmp_path / "flat.npz")
    out, _ = frugal(capsys, "analog", "train", "--data", npz, "--epochs", "1", "--out", tmp_path / "an", "--json")
    res = json.loads((tmp_path / "an" / "result.json").read_text())
    assert res["data"] == str(npz)
    for acc in (res["accuracy"], res["digital_accuracy"]):  # over the user's 21 test examples, not digits' 360
        assert abs(acc * 21 - round(acc * 21)) < 1e-9


def test_analog_refuses_bad_user_data_before_writing(tmp_path, assert_bad_input):
    a = dict(np.load(flat_digits(tmp_path / "flat.npz")))
    a["y_test"] = a["y_test"][:-1]
    np.savez(tmp_path / "bad.npz", **a)
    args = ["analog", "train", "--data", tmp_path / "bad.npz", "--epochs", "1", "--out", tmp_path / "an"]
    assert_bad_input(args, tmp_path / "an", "x_test has 21 examples but y_test has 20 labels")
