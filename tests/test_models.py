import pytest
import torch

from frugalml import data, models
from frugalml.errors import FrugalError

# output size of each registered model on its default input: CIFAR-10 / MNIST nets 10, ImageNet nets 1000
CLASSES = {
    "conv2": 10,
    "conv4": 10,
    "conv6": 10,
    "conv6_1d": 10,
    "mlp": 10,
    "mobilenet_v2": 1000,
    "resnet18": 1000,
    "resnet-small": 10,
}
LARGE = {"vgg16", "alexnet", "alexnet-grouped", "resnet50"}  # covered by the profile tests


def test_every_registered_model_builds_and_runs_on_its_default_input():
    assert set(models.names()) - LARGE == set(CLASSES), "a new model needs its expected output size here"
    for name, classes in CLASSES.items():
        net = models.get(name).eval()
        with torch.no_grad():
            out = net(torch.randn(*models.default_input(name)))
        assert out.shape == (1, classes), name


def test_for_data_sizes_models_for_the_dataset():
    ds = data.get("digits")
    for name in ("mlp", "conv2", "conv4", "resnet18"):
        net = models.for_data(name, ds).eval()
        with torch.no_grad():
            assert net(ds.x_test[:3]).shape == (3, 10)


def test_user_factory_by_module_path():
    net = models.get("torch.nn:Identity")
    assert isinstance(net, torch.nn.Identity)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(FrugalError, match="unknown model 'resnet9000'"):
        models.get("resnet9000")
    with pytest.raises(FrugalError, match="cannot import module"):
        models.get("no_such_package.mod:factory")


def test_registry_is_complete_even_if_a_module_was_imported_directly():
    import subprocess
    import sys

    code = "import frugalml.models.small; from frugalml import models; print(' '.join(models.names()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert {"mlp", "resnet50", "alexnet-grouped", "mobilenet_v2", "vgg16"} <= set(out)


def test_user_factory_gets_only_the_arguments_it_accepts(tmp_path):
    from frugalml import models

    (tmp_path / "netfile.py").write_text(
        "from torch import nn\n\n\ndef factory(num_classes):\n    return nn.Linear(3, num_classes)\n"
    )
    net = models.get(f"{tmp_path / 'netfile.py'}:factory", num_classes=7, in_channels=1, input_size=8)
    assert net.out_features == 7
