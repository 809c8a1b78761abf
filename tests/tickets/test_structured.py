"""Structured tickets: whole channels, units and heads pruned by norm, masked, then removed for real.

Every compact model is compared with the masked model it came from (torch.allclose at float32
tolerances); the masks and shapes against counts worked out by hand.
"""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from frugalml.errors import FrugalError
from frugalml.tickets import structured


def _seq_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))


def _random_bn(model):
    """Give every BatchNorm nontrivial statistics and affines, so a zero channel is not zero by accident."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model.eval()


class Attention(nn.Module):
    """Self-attention with separate q/k/v Linear layers; `num_heads` is read in forward."""

    def __init__(self, dim=16, num_heads=4):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q, self.k, self.v, self.proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = (f(x).view(b, n, self.num_heads, self.head_dim).transpose(1, 2) for f in (self.q, self.k, self.v))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.head_dim), -1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim))


class Block(nn.Module):
    """Pre-norm transformer block and a classifier head."""

    def __init__(self, dim=16):
        super().__init__()
        self.ln1, self.attn, self.ln2 = nn.LayerNorm(dim), Attention(dim), nn.LayerNorm(dim)
        self.fc1, self.fc2, self.head = nn.Linear(dim, 32), nn.Linear(32, dim), nn.Linear(dim, 5)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        x = x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))
        return self.head(x.mean(1))


def _shrink_and_compare(model, x, structure="channels", rate=0.5, strategy="layerwise"):
    plan = structured.prune_structures(model, x, {}, rate, strategy, structure)
    masks = structured.param_mask(model, x, plan)
    structured.apply_mask(model, masks)
    small, arch = structured.compact(model, x, {"model": "test", "kwargs": {}})
    with torch.no_grad():
        ref, got = model(x), small(x)
    assert torch.allclose(ref, got, rtol=1e-5, atol=1e-6), float((ref - got).abs().max())
    return plan, masks, small, arch


def test_param_mask_of_one_unit_is_its_row_bias_and_column():
    net = _seq_mlp()
    masks = structured.param_mask(net, torch.randn(2, 12), {"1": [2]})
    off = {k: torch.nonzero(~m).tolist() for k, m in masks.items() if not bool(m.all())}
    # by hand: unit 2 of the first Linear is its weight row 2, its bias 2, and column 2 of the next Linear
    assert off == {
        "1.weight": [[2, j] for j in range(12)],
        "1.bias": [[2]],
        "3.weight": [[i, 2] for i in range(8)],
    }


def test_layerwise_removes_the_smallest_norm_units_and_never_the_output():
    net = _seq_mlp()
    with torch.no_grad():
        net[1].weight.copy_(torch.arange(10.0).view(10, 1).expand(10, 12))  # unit i has norm i * sqrt(12)
    plan = structured.prune_structures(net, torch.randn(2, 12), {}, 0.3, "layerwise")
    assert plan["1"] == [0, 1, 2]  # round(0.3 * 10) smallest
    assert len(plan["3"]) == round(0.3 * 8) and "5" not in plan
    again = structured.prune_structures(net, torch.randn(2, 12), plan, 0.3, "layerwise")
    assert again["1"] == [0, 1, 2, 3, 4]  # 0.3 of the 7 left: 2 more, the next smallest


def test_sequential_mlp_compacts_to_the_masked_function():
    net = _seq_mlp()
    x = torch.randn(5, 1, 3, 4)
    plan, _, small, arch = _shrink_and_compare(net, x, rate=0.4)
    widths = [m.out_features for m in small if isinstance(m, nn.Linear)]
    assert widths == [10 - len(plan["1"]), 8 - len(plan["3"]), 3] == [6, 5, 3]  # round(0.4 * 10), round(0.4 * 8)
    assert arch["params_after"] == sum(p.numel() for p in small.parameters()) == 12 * 6 + 6 + 6 * 5 + 5 + 5 * 3 + 3


def test_unstructured_dead_units_of_a_sequential_are_removed():
    net = _seq_mlp()
    with torch.no_grad():
        net[3].weight[:, [1, 4]] = 0  # nothing reads units 1 and 4 of the first layer
        net[5].weight[:, 7] = 0
    x = torch.randn(6, 12)
    small, arch = structured.compact(net, x, None)
    assert [m.out_features for m in small if isinstance(m, nn.Linear)] == [8, 7, 3]
    assert torch.allclose(net(x), small(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy", ["layerwise", "global"])
def test_resnet_with_batchnorm_and_residuals_compacts_exactly(strategy):
    from frugalml import models

    net = _random_bn(models.get("resnet-small", in_channels=1, input_size=8, num_classes=10, widths=(8, 16)))
    x = torch.randn(4, 1, 8, 8)
    plan, _, small, _ = _shrink_and_compare(net, x, rate=0.5, strategy=strategy)
    # the stem, block 0 and its residual add share one group; the stride-2 block's add another
    kept = 8 - len(plan.get("blocks.0.conv2", plan.get("stem.0", [])))
    assert small.stem[0].out_channels == small.blocks[0].conv2.out_channels == small.blocks[1].conv1.in_channels
    assert small.blocks[1].shortcut[0].out_channels == small.blocks[1].conv2.out_channels == small.fc.in_features
    if strategy == "layerwise":
        assert small.stem[0].out_channels == kept == 4
        assert small.blocks[0].conv1.out_channels == 4 and small.fc.in_features == 8


def test_depthwise_conv_prunes_in_step_with_its_input():
    torch.manual_seed(0)
    net = _random_bn(
        nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8),
            nn.ReLU(),
            nn.Conv2d(8, 6, 1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(6, 3),
        )
    )
    _, _, small, _ = _shrink_and_compare(net, torch.randn(3, 1, 6, 6), rate=0.5)
    assert small[0].out_channels == small[3].in_channels == small[3].groups == 4 and small[5].out_channels == 3


def test_attention_heads_are_removed_whole_and_num_heads_follows():
    torch.manual_seed(0)
    net = Block().eval()
    x = torch.randn(2, 5, 16)
    plan, _, small, arch = _shrink_and_compare(net, x, structure="heads", rate=0.5)
    assert small.attn.num_heads == 2 and small.attn.q.out_features == small.attn.proj.in_features == 8
    assert small.fc1.out_features == 32 and small.ln1.normalized_shape == (16,)  # heads only; residual stream kept
    rebuilt = structured.rebuild(Block(), arch)  # a fresh block replays the removals, num_heads included
    rebuilt.load_state_dict(small.state_dict())
    assert rebuilt.attn.num_heads == 2 and torch.allclose(rebuilt(x), small(x))
    _, _, both, _ = _shrink_and_compare(Block().eval(), x, structure="channels", rate=0.5)
    assert both.attn.num_heads == 2 and both.fc1.out_features == 16  # channels mode: heads and MLP units


def test_compact_refuses_a_graph_the_tracer_misreads():
    class Flip(nn.Module):  # reverses the channel order: torch-pruning follows it as if it kept it
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 8), nn.Linear(8, 3)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)).flip(1))

    torch.manual_seed(0)
    net = Flip()
    with torch.no_grad():
        net.b.weight[:, :3] = 0
    with pytest.raises(FrugalError, match="changed the outputs") as e:
        structured.compact(net, torch.randn(4, 6), None)
    assert "\n" not in str(e.value)


def test_compact_refuses_an_untraceable_model():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x):
            raise RuntimeError("boom")

    with pytest.raises(FrugalError, match="cannot trace Bad"):
        structured.compact(Bad(), torch.randn(1, 4), None)


def test_structured_find_finetune_and_export_round_trip(tmp_path, monkeypatch):
    """IMP over channels (fine-tuned) on digits; the export is smaller, loads without pickle and
    computes the masked ticket's outputs."""
    from frugalml import data, models
    from frugalml.tickets.config import ticket_training
    from frugalml.tickets.exporting import export, load_export
    from frugalml.tickets.imp import STRUCTURE, TicketConfig, find, level_dir

    cfg = TicketConfig(
        model="resnet-small",
        data="digits",
        levels=1,
        rate=0.5,
        seeds=1,
        structure="channels",
        retrain="finetune",
        controls=["random"],
        train=ticket_training(epochs=1, batch_size=128),
    )
    monkeypatch.setitem(
        models._REGISTRY,
        "resnet-small",
        models.Entry(lambda **kw: models.small.SmallResNet((8, 16), **kw), (1, 1, 8, 8), "tiny"),
    )
    res = find(cfg, tmp_path / "run", progress=False)
    d = level_dir(tmp_path / "run", 1, 0)
    from frugalml.files import read_json

    plan = read_json(d / STRUCTURE)
    assert plan and all(len(v) in (4, 8) for v in plan.values())  # half of 8 or 16 channels
    assert res["levels"][1]["random_accuracy"] is not None
    out = export(d, "compact", tmp_path / "exp", measure=False)
    assert out["max_abs_diff"] < 1e-4 and out["size_ratio"] > 2.5
    net = load_export(tmp_path / "exp")
    ds = data.get("digits")
    assert net.stem[0].out_channels == 4 and net.fc.in_features == 8
    assert abs(float((net(ds.x_test).argmax(1) == ds.y_test).float().mean()) - out["accuracy_dense"]) < 1e-6


def test_config_refuses_unknown_structure_and_retrain():
    from frugalml.tickets.config import TicketConfig

    with pytest.raises(FrugalError, match="unknown structure 'rows'"):
        TicketConfig(structure="rows").validate()
    TicketConfig(retrain="lr-rewind").validate()
    with pytest.raises(FrugalError, match="unknown retrain 'lr'"):
        TicketConfig(retrain="lr").validate()
    ft = TicketConfig().finetune_training()
    assert ft.schedule == "constant" and ft.lr == pytest.approx(TicketConfig().train.lr / 100)


@pytest.mark.parametrize("retrain", ["rewind", "finetune", "lr-rewind"])
def test_retrain_modes_start_weights_and_first_lr(tmp_path, monkeypatch, retrain):
    """Level 1 starts from the rewind weights (rewind) or level 0's trained weights (finetune,
    lr-rewind), masked; its LR at step 0 is the schedule's first (rewind, lr-rewind: 0.05, cosine)
    or lr/100 held constant (finetune); every mode trains as many epochs as level 0."""
    from frugalml import train
    from frugalml.tickets.config import ticket_training
    from frugalml.tickets.imp import MASK, REWIND, WEIGHTS, TicketConfig, find, level_dir

    seen = []
    real_fit = train.fit

    def spy(model, ds, tc, run, on_step=None, **kw):
        start = {k: v.detach().clone() for k, v in model.state_dict().items()}

        def hook(m, opt, it):
            if it == 0:
                seen.append({"start": start, "lr0": opt.param_groups[0]["lr"], "tc": tc})
            on_step(m, opt, it)

        return real_fit(model, ds, tc, run, on_step=hook, **kw)

    monkeypatch.setattr(train, "fit", spy)
    cfg = TicketConfig(
        model="mlp",
        data="digits",
        levels=1,
        rate=0.5,
        seeds=1,
        structure="channels",
        retrain=retrain,
        controls=[],
        train=ticket_training(epochs=1, batch_size=256, lr=0.05),
    )
    find(cfg, tmp_path / "run", progress=False)
    from safetensors.torch import load_file

    d0, d1 = level_dir(tmp_path / "run", 0, 0), level_dir(tmp_path / "run", 1, 0)
    source = load_file(str(d1 / REWIND if retrain == "rewind" else d0 / WEIGHTS))
    mask = load_file(str(d1 / MASK))
    assert len(seen) == 2 and seen[0]["lr0"] == pytest.approx(0.05)
    lvl1 = seen[1]
    assert lvl1["lr0"] == pytest.approx(0.0005 if retrain == "finetune" else 0.05)
    assert lvl1["tc"].schedule == ("constant" if retrain == "finetune" else "cosine") and lvl1["tc"].epochs == 1
    for name, m in mask.items():  # kept weights equal the source's, pruned ones are zero
        w = lvl1["start"][name]
        assert torch.equal(w[m.bool()], source[name][m.bool()]) and not w[~m.bool()].any()
    assert not torch.equal(load_file(str(d0 / WEIGHTS))["fc.weight"], load_file(str(d1 / REWIND))["fc.weight"])


def test_cli_structure_typo_exits_2(assert_bad_input, tmp_path):
    assert_bad_input(
        ["tickets", "find", "--structure", "rows", "--out", tmp_path / "run"], tmp_path / "run", "unknown structure"
    )


class FlipNet(nn.Module):
    """An MLP that reverses its hidden units' order: torch-pruning maps them as if it kept it."""

    def __init__(self, in_channels=1, input_size=8, num_classes=10):
        super().__init__()
        self.a, self.b = nn.Linear(in_channels * input_size * input_size, 16), nn.Linear(16, num_classes)

    def forward(self, x):
        return self.b(torch.relu(self.a(x.flatten(1))).flip(1))


def test_cli_export_of_a_graph_it_cannot_shrink_exits_2_and_writes_nothing(assert_bad_input, tmp_path, monkeypatch):
    from frugalml import models
    from frugalml.tickets.config import ticket_training
    from frugalml.tickets.imp import TicketConfig, find

    monkeypatch.setitem(models._REGISTRY, "flipnet", models.Entry(FlipNet, (1, 1, 8, 8), "test"))
    cfg = TicketConfig(model="flipnet", data="digits", levels=1, rate=0.5, seeds=1, structure="channels", controls=[])
    cfg.train = ticket_training(epochs=1, batch_size=256)
    find(cfg, tmp_path / "run", progress=False)
    ticket = tmp_path / "run" / "level_1"
    assert_bad_input(["tickets", "export", "--run", ticket], ticket, "changed the outputs")


def test_unused_channels_follows_a_flatten_into_a_linear(monkeypatch):
    """A conv channel read only by a Linear after flatten is unused exactly when its k = H*W input
    columns of that Linear are zero (channel c feeds columns c*k .. c*k+k-1)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from user_models import my_resnet  # stem -> residual block -> maxpool 4x4 -> flatten -> Linear

    torch.manual_seed(0)
    model, x = my_resnet().eval(), torch.randn(2, 1, 8, 8)
    assert structured.unused_channels(model, x) == {}
    with torch.no_grad():  # channel 2 of the residual stream: no producer writes it, no reader reads it
        for conv in (model.stem, model.block.conv2):
            conv.weight[2].zero_()
            conv.bias[2] = 0
        model.block.conv1.weight[:, 2] = 0
        model.head.weight[:, 2 * 16 : 3 * 16] = 0
    assert structured.unused_channels(model, x) == {"block.conv2": [2]}
    with torch.no_grad():
        model.head.weight[0, 2 * 16 + 15] = 1.0  # the last column of channel 2 is read again
    assert structured.unused_channels(model, x) == {}
