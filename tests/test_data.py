import pytest
import torch

from frugalml import data
from frugalml.errors import FrugalError


def test_digits_split_is_fixed_stratified_and_normalised():
    a, b = data.get("digits"), data.get("digits")
    assert torch.equal(a.y_test, b.y_test) and torch.equal(a.x_train, b.x_train)
    assert len(a.y_train) + len(a.y_test) == 1797
    assert a.input_shape == (1, 8, 8)
    assert float(a.x_train.min()) >= 0 and float(a.x_train.max()) <= 1
    counts = torch.bincount(a.y_test, minlength=10)
    assert int(counts.min()) >= 40  # every class in the test set


def test_mnist1d_is_generated_deterministically_and_settings_change_it():
    a = data.get("mnist1d", num_samples=500)
    b = data.get("mnist1d", num_samples=500)
    assert a.input_shape == (40,) and len(a.y_train) == 400
    assert torch.equal(a.x_train, b.x_train)
    c = data.get("mnist1d", num_samples=500, shear_scale=0.0)
    assert not torch.equal(a.x_train, c.x_train)
    # variants carry their settings in the name, so run directories can tell them apart
    assert a.name == "mnist1d[num_samples=500]" and c.name == "mnist1d[num_samples=500,shear_scale=0.0]"
    assert data.get("mnist1d", num_samples=500, seed=42).name == a.name


def test_subset_classes_relabels():
    ds = data.get("digits").subset_classes([5, 6, 7, 8, 9])
    assert ds.num_classes == 5
    assert set(ds.y_train.tolist()) == {0, 1, 2, 3, 4}


def test_unknown_dataset_and_setting_are_clear_errors():
    with pytest.raises(FrugalError, match="unknown dataset"):
        data.get("imagenet")
    with pytest.raises(FrugalError, match="unknown mnist1d generator setting"):
        data.get("mnist1d", warp=3)
