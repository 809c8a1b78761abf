"""Model pieces against hand-computed values and against independent implementations."""

import math

import torch
from torch.nn import functional as F

from frugalml.video.infer import (
    apply_backbones,
    flops_table,
    oracle_actions,
    policy_actions,
    random_actions,
    uniform_logits,
    video_flops,
)
from frugalml.video.model import ARNet, ARNetConfig, resize, temperature


def small_net(seed=0, **kw):
    torch.manual_seed(seed)
    return ARNet(ARNetConfig(**kw)).eval()


def test_resize_is_block_averaging():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    want = torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]])
    assert torch.equal(resize(x, 2), want)


def test_temperature_follows_ar_net_schedule():
    assert temperature(0) == 5.0
    assert math.isclose(temperature(10), 5 * math.exp(-0.45))


def test_backbone_flops_match_the_conv_formula():
    net = small_net()
    table = flops_table(net, frames=16)

    # default convs 1->32->64->128, 3x3 stride 2: Cout*Cin*9*Hout*Wout MACs each, then fc 128->4
    def macs(r):
        h = [(r + 1) // 2, (r + 3) // 4, (r + 7) // 8]
        return 32 * 9 * h[0] ** 2 + 64 * 32 * 9 * h[1] ** 2 + 128 * 64 * 9 * h[2] ** 2 + 128 * 4

    assert table.backbone == [2 * macs(64), 2 * macs(48), 2 * macs(32)]
    assert table.backbone[0] == 2 * 9_732_608  # 294,912 + 4,718,592 + 4,718,592 + 512
    # LSTM step: 4 gates x hidden x (input + hidden), plus the head (hidden + frame feature) -> 6 actions
    assert table.policy_step == 2 * (4 * 32 * (32 + 32) + (32 + 32) * 6)
    actions = torch.tensor([[0, -1, 2, 1, 5, -1, -1, -1], [3, 4, -1, 0, 0, 0, 0, 0]])
    got = video_flops(table, actions)
    b = table.backbone
    policy = 8 * (table.policy_cnn + table.policy_step)  # counted on every frame (upper bound)
    want0 = b[0] + b[2] + b[1] + policy
    want1 = 5 * b[0] + policy
    assert got.tolist() == [want0, want1]
    assert video_flops(table, actions, with_policy=False).tolist() == [b[0] + b[2] + b[1], 5 * b[0]]


def test_rollout_skip_semantics_and_fusion_by_hand():
    net = small_net()
    # res64, skip2 (covers t=2), -, res32, skip4 (covers 5,6,7), -, -, -
    fixed = torch.tensor([[0, 4, 0, 2, 5, 0, 0, 0]])
    logits = torch.randn(1, 8, 3, 4)
    small = torch.randn(1, 8, 1, 16, 16)
    fused, use, alive, actions = net.rollout(small, logits, sample=False, policy=fixed)
    assert alive[0].tolist() == [1, 1, 0, 1, 1, 0, 0, 0]
    assert actions[0].tolist() == [0, 4, -1, 2, 5, -1, -1, -1]
    assert torch.allclose(fused[0], (logits[0, 0, 0] + logits[0, 3, 2]) / 2)
    assert use.sum() == 2


def test_efficient_policy_matches_the_training_rollout():
    net = small_net(seed=1)
    with torch.no_grad():  # a sharp random head, so that every kind of action occurs
        net.policy_cnn.proj.weight.normal_(0, 1.0)
        net.policy_step.cell.weight_ih.normal_(0, 1.0)
        net.policy_step.head.weight.normal_(0, 5.0)
        net.policy_step.head.bias.zero_()
    x = torch.randn(6, 12, 1, 64, 64) * 3
    eff = policy_actions(net, x)
    _, _, alive, ref = net.rollout(resize(x, 16), torch.zeros(6, 12, 3, 4), sample=False)
    assert torch.equal(eff, ref)
    single = torch.cat([policy_actions(net, x[i : i + 1]) for i in range(len(x))])  # the one-clip fast path
    assert torch.equal(single, ref)
    assert (eff == -1).any() and (eff >= 3).any() and (eff == 0).any()


def test_sparse_backbones_match_dense_gather():
    net = small_net(seed=2)
    x = torch.randn(3, 6, 1, 64, 64)
    actions = torch.tensor([[0, 1, -1, 2, 4, -1], [-1, -1, -1, -1, -1, -1], [2, 2, 0, 3, 0, 1]])
    got = apply_backbones(net, x, actions)
    dense = net.frame_logits(x)  # every backbone on every frame
    for i in range(3):
        picks = [dense[i, t, a] for t, a in enumerate(actions[i].tolist()) if 0 <= a < 3]
        want = torch.stack(picks).mean(0) if picks else torch.zeros(4)
        assert torch.allclose(got[i], want, atol=1e-5)
        one = apply_backbones(net, x[i : i + 1], actions[i : i + 1])  # the one-clip fast path
        assert torch.allclose(one[0], want, atol=1e-5)
    assert torch.allclose(uniform_logits(net, x, 1), dense[:, :, 1].mean(1), atol=1e-5)


def test_straight_through_gumbel_sends_gradient_to_the_policy():
    net = small_net(seed=3).train()
    small = torch.randn(4, 8, 1, 16, 16)
    logits = torch.randn(4, 8, 3, 4)
    fused, use, alive, _ = net.rollout(small, logits, sample=True, tau=5.0)
    assert set(use.unique().tolist()) <= {0.0, 1.0}  # hard one-hot in the forward pass
    loss = F.cross_entropy(fused, torch.tensor([0, 1, 2, 3])) + use.sum() * 1e-3 + alive.sum() * 1e-3
    loss.backward()
    assert net.policy_cnn.proj.weight.grad.abs().sum() > 0
    assert net.policy_step.head.weight.grad.abs().sum() > 0


def test_random_and_oracle_actions():
    gen = torch.Generator().manual_seed(0)
    mix = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])  # always skip4
    acts = random_actions(mix, 2, 9, [1, 2, 4], 3, gen)
    assert acts[0].tolist() == [5, -1, -1, -1, 5, -1, -1, -1, 5]
    mix = torch.tensor([0.5, 0.0, 0.5, 0.0, 0.0, 0.0])
    acts = random_actions(mix, 400, 16, [1, 2, 4], 3, gen)
    assert abs(float((acts == 0).float().mean()) - 0.5) < 0.02
    inf = torch.tensor([[True, False, True]])
    assert oracle_actions(inf).tolist() == [[0, -1, 0]]


def test_one_clip_path_matches_the_batched_path_and_follows_weight_changes():
    from frugalml.video.infer import adaptive_logits

    net = small_net(seed=4)
    with torch.no_grad():  # a sharp random head, so that backbones and skips both occur
        net.policy_step.head.weight.normal_(0, 5.0)
    x = torch.randn(5, 10, 1, 64, 64) * 3
    logits, actions = adaptive_logits(net, x)
    for i in range(5):
        one, a = adaptive_logits(net, x[i : i + 1])
        assert torch.equal(a, actions[i : i + 1]) and torch.allclose(one, logits[i : i + 1], atol=1e-5)
    before = adaptive_logits(net, x[:1])[1]
    with torch.no_grad():  # new policy weights in place: the prepared numpy copy must not be reused
        net.policy_step.head.bias.copy_(torch.tensor([-50.0, -50.0, -50.0, 50.0, -50.0, -50.0]))
    after = adaptive_logits(net, x[:1])[1]
    assert after.tolist() == [[3] * 10] and not torch.equal(before, after)  # skip1 everywhere now
