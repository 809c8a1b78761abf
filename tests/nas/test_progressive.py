"""Progressive shrinking (OFA): stages of the supernet's training, each making more genes elastic."""

import shutil

import pytest
import torch

from frugalml.errors import FrugalError
from frugalml.models import space as spaces
from frugalml.nas import supernet as sn
from frugalml.nas.supernet import SupernetConfig, load_supernet, split_epochs, supernet_training, train_supernet


def test_epochs_split_30_percent_to_the_largest_and_the_rest_evenly():
    assert split_epochs(40, 4) == [12, 10, 9, 9]  # 0.3 x 40 = 12; 28 = 10 + 9 + 9
    assert split_epochs(30, 3) == [9, 11, 10]
    assert split_epochs(4, 4) == [1, 1, 1, 1]
    with pytest.raises(FrugalError, match="at least 4 epochs, got 3"):
        split_epochs(3, 4)
    cfg = SupernetConfig(sampling="progressive", train=supernet_training(epochs=10), stage_epochs=(4, 2, 2, 1))
    with pytest.raises(FrugalError, match="add up to the 10 epochs"):
        cfg.validate()


def test_every_gene_of_every_space_becomes_elastic_in_exactly_one_stage():
    for name in spaces.names():
        sp = spaces.get(name)
        stages = sp.shrink_stages()
        assert stages[0][1] == ()  # the largest network alone first
        genes = [g for _, gs in stages for g in gs]
        assert sorted(genes) == sorted(sp.genes) and len(genes) == len(set(genes)), name


def _seen(monkeypatch, sp, elastic, steps=12, subnets=2):
    seen = []
    real = sp.set_active
    monkeypatch.setattr(sp, "set_active", lambda net, arch: (seen.append(dict(arch)), real(net, arch)))
    net = sp.build_supernet(seed=0).train()
    net.register_buffer("nas_step", torch.zeros((), dtype=torch.long))
    loss_fn = sn.make_loss(sp, "sandwich", 0, subnets, elastic=elastic)
    x, y = torch.randn(4, 40), torch.randint(0, 10, (4,))
    for _ in range(steps):
        loss_fn(net, x, y)
    return seen


def test_a_stage_samples_only_its_elastic_genes_and_the_first_trains_the_largest_alone(monkeypatch):
    sp = spaces.get("cnn")
    largest = sp.largest()
    assert _seen(monkeypatch, sp, (), steps=3) == [largest] * 3
    kernel = dict(sp.shrink_stages())["kernel"]
    seen = _seen(monkeypatch, sp, kernel)
    assert len(seen) == 12 * 4  # largest, the stage's smallest, 2 random per step
    assert seen[1] == largest | {g: min(sp.genes[g]) for g in kernel}  # res 24, every kernel 3, depth/expand max
    for arch in seen:
        assert all(arch[g] == largest[g] for g in sp.genes if g not in kernel)
    assert {arch["s2.b3.k"] for arch in seen} == {3, 5, 7} and {arch["res"] for arch in seen} == {24, 32, 40}


def test_sorting_before_the_expand_stage_orders_channels_and_keeps_the_function():
    sp = spaces.get("cnn")
    net = sp.build_supernet(seed=0).eval()
    x = torch.randn(5, 40)
    before = net(x)
    sp.before_stage(net, "kernel")  # nothing happens before other stages
    assert torch.equal(net(x), before)
    sp.before_stage(net, "expand")
    for blocks in net.stages:
        for blk in blocks:
            importance = blk.conv2.weight.abs().sum(dim=(0, 2))
            assert torch.all(importance[:-1] >= importance[1:])
    assert torch.allclose(net(x), before, atol=1e-5)


def test_progressive_training_runs_every_stage_and_a_run_killed_between_stages_resumes_exactly(tmp_path):
    cfg = SupernetConfig(
        sampling="progressive", quick=True, subnets=1, train=supernet_training(epochs=4, batch_size=256)
    )
    res = train_supernet(cfg, tmp_path / "full", track=False, progress=False)
    assert [s["name"] for s in res["stages"]] == ["largest", "kernel", "depth", "expand"]
    assert [s["epochs"] for s in res["stages"]] == [1, 1, 1, 1]
    assert [s["lr"] for s in res["stages"]] == pytest.approx([0.003, 0.0009, 0.0009, 0.0009])
    assert [(h["epoch"], h["stage"]) for h in res["history"]] == list(
        zip([1, 2, 3, 4], ["largest", "kernel", "depth", "expand"], strict=True)
    )
    assert res["seconds"] == pytest.approx(sum(s["seconds"] for s in res["stages"]))
    full = load_supernet(tmp_path / "full")[1]
    # the same run killed after its third stage: the last stage (and the result) never written
    shutil.copytree(tmp_path / "full", tmp_path / "killed")
    shutil.rmtree(tmp_path / "killed" / "stage3-expand")
    for f in ("result.json", sn.WEIGHTS):
        (tmp_path / "killed" / f).unlink()
    train_supernet(cfg, tmp_path / "killed", track=False, progress=False)
    resumed = load_supernet(tmp_path / "killed")[1]
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
