import random

import pytest
import torch

from frugalml import data
from frugalml.errors import FrugalError
from frugalml.nas import spaces
from frugalml.nas.supernet import make_loss


def test_reverse_task_targets_are_the_reversed_sources():
    ds = data.get("seq2seq-reverse", num_samples=50, seed=1)
    assert ds.num_classes == 13 and ds.input_shape == (9,)
    for x, y in zip(ds.x_train, ds.y_train, strict=True):
        n = int((x == 2).nonzero()[0])  # EOS position
        assert y[:n].tolist() == x[:n].flip(0).tolist() and int(y[n]) == 2
        assert torch.all(x[n + 1 :] == 0) and torch.all(y[n + 1 :] == 0)
    s = data.get("seq2seq-sort", num_samples=20)
    n = int((s.x_test[0] == 2).nonzero()[0])
    assert s.y_test[0][:n].tolist() == sorted(s.x_test[0][:n].tolist())
    with pytest.raises(FrugalError, match="min_len"):
        data.get("seq2seq-reverse", min_len=5, max_len=2)


def test_extracted_transformer_matches_the_supernet_in_training_and_greedy_decoding():
    sp = spaces.get("transformer")
    net = sp.build_supernet(seed=0).eval()
    x = torch.randint(3, 13, (3, 9))
    tgt_in = torch.randint(3, 13, (3, 9))
    rng = random.Random(0)
    for arch in [sp.smallest(), sp.largest(), sp.sample(rng), sp.sample(rng)]:
        sp.set_active(net, arch)
        sub = sp.extract(net, arch)
        with torch.no_grad():
            assert torch.allclose(net(x, tgt_in), sub(x, tgt_in), atol=1e-5)
            assert torch.equal(net(x), sub(x))
        assert sum(p.numel() for p in sub.parameters()) <= sum(p.numel() for p in net.parameters())


def test_decoder_attends_to_the_last_k_encoder_layers():
    sp = spaces.get("transformer")
    net = sp.build_supernet(seed=0).eval()
    a = sp.largest() | {"enc.d": 3, "dec.attn_k": 2}
    sp.set_active(net, a)
    mem = net.encode(torch.randint(3, 13, (1, 9)))
    assert mem.shape == (1, 2 * 9, 64)
    assert sp.canonical(a | {"enc.d": 1})["dec.attn_k"] == 1


def test_a_few_supernet_steps_lower_the_loss_of_the_largest_subnetwork():
    torch.manual_seed(0)
    sp = spaces.get("transformer")
    net = sp.build_supernet(seed=0)
    net.register_buffer("nas_step", torch.zeros((), dtype=torch.long))
    train = sp.dataset(quick=True)[0]
    x, y = train.x_train[:64], train.y_train[:64]
    loss_fn = make_loss(sp, "uniform", 0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.eval()
    with torch.no_grad():
        before = float(loss_fn(net, x, y)[0])
    net.train()
    for _ in range(15):
        loss, _ = loss_fn(net, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        assert float(loss_fn(net, x, y)[0]) < before
