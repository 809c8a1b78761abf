"""PVNet, the supernet interface, scoring and the `pointvoxel` search space."""

import math
import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from frugalml.errors import FrugalError
from frugalml.pointcloud.model import Arch, PVNet, minkunet, spvcnn
from frugalml.pointcloud.train import (
    class_weights,
    confusion,
    count_macs,
    iou_from_confusion,
    segmentation_loss,
)


def scenes(b=2, n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    xyz = torch.rand(b, n, 3, generator=g) * torch.tensor([20.0, 20.0, 3.0]) - torch.tensor([10.0, 10.0, 0.0])
    return torch.cat([xyz, torch.rand(b, n, 1, generator=g)], -1)


@pytest.mark.parametrize("arch", [spvcnn(0.25, 0.5), minkunet(0.25, 0.5)])
def test_forward_shape_and_scenes_in_a_batch_do_not_interact(arch):
    torch.manual_seed(0)
    net = PVNet(arch).eval()
    x = scenes()
    with torch.no_grad():
        both = net(x)
        alone = net(x[1:])
    assert both.shape == (2, 300, 9)
    torch.testing.assert_close(both[1], alone[0], atol=1e-5, rtol=1e-4)


def test_voxel_only_network_gives_every_point_of_a_voxel_the_same_label():
    torch.manual_seed(0)
    net = PVNet(minkunet(0.25, 1.0)).eval()
    x = scenes(1, 400)
    with torch.no_grad():
        logits = net(x)[0]
    cells = torch.floor(x[0, :, :3] / 1.0).long()
    _, inv = torch.unique(cells, dim=0, return_inverse=True)
    for v in inv.unique()[:20]:
        rows = logits[inv == v]
        assert torch.allclose(rows, rows[:1].expand_as(rows))


def test_empty_point_list_gives_empty_logits():
    net = PVNet(spvcnn(0.25, 0.5)).eval()
    out = net.forward_points(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert out.shape == (0, 9)


def test_bad_input_shape_is_a_frugal_error():
    with pytest.raises(FrugalError, match="expected points of shape"):
        PVNet(spvcnn(0.25, 0.5))(torch.zeros(2, 10, 3))


def test_extracted_subnet_equals_supernet_running_that_subnet():
    torch.manual_seed(0)
    big = PVNet(Arch(depths=(2,) * 6)).eval()
    sub_arch = Arch(channels=(8, 16, 16, 32, 16, 16, 8), depths=(1, 0, 2, 1, 0, 1), voxel_size=0.7)
    x = scenes(1, 200)
    with torch.no_grad():
        ref = big.set_active(sub_arch)(x)
        sub = big.extract(sub_arch).eval()
        got = sub(x)
    torch.testing.assert_close(got, ref)
    assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in big.parameters()) / 4
    with pytest.raises(FrugalError):
        big.set_active(Arch(channels=(64,) * 7))


def test_iou_from_a_hand_made_confusion():
    pred = torch.tensor([0, 0, 1, 1, 1, 2])
    target = torch.tensor([0, 1, 1, 1, -1, 0])
    conf = confusion(pred, target, 4)
    assert conf.sum() == 5  # the ignored point is left out
    miou, per = iou_from_confusion(conf)
    # class 0: tp 1, fp 1 (pred 0 for a 1), fn 1 (a 0 predicted 2) -> 1/3; class 1: tp 2, fn 1 -> 2/3; class 2: 0
    assert per[0] == pytest.approx(1 / 3) and per[1] == pytest.approx(2 / 3) and per[2] == 0.0 and per[3] is None
    assert miou == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert math.isnan(iou_from_confusion(torch.zeros(3, 3, dtype=torch.long))[0])


def test_class_weights_follow_inverse_square_root_frequency():
    y = torch.tensor([0] * 16 + [1] * 4 + [-1] * 3)
    w = class_weights(y, 2)
    assert w[1] / w[0] == pytest.approx(2.0) and w.mean() == pytest.approx(1.0)


def test_loss_ignores_unlabelled_points_and_counts_per_scene_accuracy():
    class Fixed(torch.nn.Module):
        def forward(self, x):
            return torch.tensor([[[5.0, 0.0], [5.0, 0.0], [0.0, 5.0]]]).expand(x.shape[0], -1, -1)

    y = torch.tensor([[0, 1, -1], [0, 0, 1]])
    loss, correct, _ = segmentation_loss(Fixed(), torch.zeros(2, 3, 4), y)
    assert correct.item() == pytest.approx(1 / 2 + 3 / 3)
    y_all_ignored = torch.full((1, 3), -1)
    loss, correct, _ = segmentation_loss(Fixed(), torch.zeros(1, 3, 4), y_all_ignored)
    assert loss.item() == 0 and correct.item() == 0


def test_point_voxel_net_learns_a_tiny_task_a_coarse_voxel_net_cannot():
    # two classes split by a plane through the middle of 2 m voxels: only the point branch can resolve it
    g = torch.Generator().manual_seed(1)
    # 16 voxels per scene with ~25 points each, so a per-voxel majority vote stays near 50%
    x = torch.cat([torch.rand(2, 400, 3, generator=g) * torch.tensor([8.0, 8.0, 1.0]), torch.zeros(2, 400, 1)], -1)
    y = ((x[..., 0] % 2.0) > 1.0).long()
    results = {}
    for name, arch in [("pv", spvcnn(0.25, 2.0)), ("voxel", minkunet(0.25, 2.0))]:
        torch.manual_seed(0)
        net = PVNet(arch, num_classes=2)
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        for _ in range(20):
            loss, _, logits = segmentation_loss(net, x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        # accuracy of the last training pass (batch statistics; running BN statistics lag after 20 steps)
        results[name] = (logits.argmax(-1) == y).float().mean().item()
    assert results["voxel"] < 0.65  # a voxel holds both classes half and half
    assert results["pv"] > 0.85


def test_count_macs_sees_every_sparse_matmul():
    net = PVNet(spvcnn(0.25, 0.5)).eval()
    x = scenes(1, 200)
    with torch.no_grad(), FlopCounterMode(display=False) as c:
        net(x)
    assert count_macs(net, x) == c.get_total_flops() // 2 > 0


def test_pointvoxel_space_macs_formula_matches_counted_macs():
    from frugalml.models import space as spaces

    sp = spaces.get("pointvoxel", points=256)
    rng = random.Random(0)
    for arch in [sp.smallest(), sp.largest(), sp.sample(rng), sp.sample(rng)]:
        sub = sp.build_subnet(arch)
        assert sp.macs(arch) == count_macs(sub, sp.example_input(arch))
    assert sp.macs(sp.smallest()) < sp.macs(sp.largest()) / 5


def test_pointvoxel_scan_space_costs_the_whole_example_scan():
    from frugalml.data.pointcloud import make_scene
    from frugalml.models import space as spaces
    from frugalml.pointcloud.space import EXAMPLE_SCENE

    scan, sampled = spaces.get("pointvoxel-scan"), spaces.get("pointvoxel")
    whole = make_scene(EXAMPLE_SCENE).points
    x = scan.example_input()
    assert x.shape == (1, len(whole), 4) and torch.equal(x[0], torch.from_numpy(whole))
    assert sampled.example_input().shape == (1, sampled.config["points"], 4)
    # the same space otherwise: a supernet trained under one is a supernet of the other
    assert scan.genes == sampled.genes and scan.config == sampled.config
    arch = scan.smallest()
    assert scan.macs(arch) == count_macs(scan.build_subnet(arch), x)
    assert scan.macs(arch) > 2 * sampled.macs(arch)  # 10,589 points against 2,048


def test_pointvoxel_space_extract_prepare_evaluate_quick():
    from frugalml.models import space as spaces
    from frugalml.nas.supernet import Evaluator

    sp = spaces.get("pointvoxel", points=256)
    train, val, test = sp.dataset(quick=True)
    assert len(val.y_test) >= 1 and not torch.equal(train.x_train[0], val.x_test[0])
    net = sp.build_supernet(seed=0)
    arch = sp.sample(random.Random(1))
    sp.set_active(net, arch)
    loss, correct, logits = sp.loss(net, train.x_train[:2], train.y_train[:2])
    assert logits.shape == (2, train.x_train.shape[1], 9) and loss.item() > 0
    ev = Evaluator(sp, net, train, val)
    miou = ev(arch)
    assert 0 <= miou <= 1 and ev(arch) == miou and ev.evaluations == 1
    with pytest.raises(FrugalError, match="outside"):
        sp.validate(arch | {"voxel": 0.123})
