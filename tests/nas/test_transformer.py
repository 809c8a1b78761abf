import random

import pytest
import torch

from frugalml import data
from frugalml.errors import FrugalError
from frugalml.models import space as spaces
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


def test_transformer_space_sorts_by_default_and_rejects_unknown_tasks():
    sp = spaces.get("transformer")
    train, val, test = sp.dataset(quick=True)
    assert sp.config["task"] == "seq2seq-sort" and len(val.y_test) == 240  # quick: 960 of 1200 train, 1/4 validates
    for x, y in zip(val.x_test[:20], val.y_test[:20], strict=True):
        n = int((x == 2).nonzero()[0])
        assert y[:n].tolist() == sorted(x[:n].tolist()) and int(y[n]) == 2
    assert not torch.equal(val.x_test, test.x_test[: len(val.x_test)])  # validation and test strings differ
    with pytest.raises(FrugalError, match="unknown transformer task"):
        spaces.get("transformer", task="shuffle")


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
    mem = net.encode(torch.randint(3, 13, (1, sp.max_len)))
    assert mem.shape == (1, 2 * sp.max_len, 64)
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


def test_incremental_greedy_decoding_with_kv_cache_equals_rerunning_the_decoder_on_the_prefix():
    sp = spaces.get("transformer")
    net = sp.build_supernet(seed=3).eval()
    x = torch.randint(3, 13, (4, 9))
    rng = random.Random(1)
    for arch in [sp.largest(), sp.sample(rng), sp.sample(rng)]:
        sub = sp.extract(net, arch)
        with torch.no_grad():
            mem = sub.encode(x)
            prefix = torch.full((4, 1), sub.bos, dtype=torch.long)
            for _ in range(sub.max_len):  # no cache: the whole prefix through the decoder every step
                prefix = torch.cat([prefix, sub.decode(mem, prefix)[:, -1].argmax(-1, keepdim=True)], dim=1)
            assert torch.equal(sub(x), prefix[:, 1:])
            # the cached step's logits equal the full decoder's logits at that position
            caches = [{} for _ in range(arch["dec.d"])]
            full = sub.decode(mem, prefix[:, :-1])
            for t in range(sub.max_len):
                step = sub.decode_step(mem, prefix[:, t : t + 1], t, caches)
                assert torch.allclose(step, full[:, t], atol=1e-5)
            assert caches[0]["self"]["k"].shape[2] == sub.max_len


def test_transformer_scaling_family_grows_width_and_depth_uniformly():
    sp = spaces.get("transformer")
    fam = dict(sp.scaling_family())
    assert len(fam) == 9
    for a in fam.values():
        sp.validate(a)
        ffns = {a[f"enc.l{i}.ffn"] for i in range(1, a["enc.d"] + 1)} | {
            a[f"dec.l{i}.ffn"] for i in range(1, a["dec.d"] + 1)
        }
        assert len(ffns) == 1 and a["dec.attn_k"] == 1  # every layer alike
    assert fam["w1-d1"] == sp.canonical(sp.smallest() | {"dec.attn_k": 1})
    assert fam["w3-d3"]["emb"] == 64 and fam["w3-d3"]["enc.d"] == 3 and fam["w3-d3"]["dec.d"] == 2
    for d in (1, 2, 3):
        macs = [sp.macs(fam[f"w{w}-d{d}"]) for w in (1, 2, 3)]
        assert macs == sorted(macs) and len(set(macs)) == 3


def test_transformer_macs_by_hand_match_the_flop_counter_on_cached_greedy_decoding():
    from frugalml.cost.counting import profile

    sp = spaces.get("transformer")
    rng = random.Random(4)
    for arch in [sp.smallest(), sp.largest(), sp.sample(rng), sp.sample(rng), sp.sample(rng)]:
        assert sp.macs(arch) == profile(sp.build_subnet(arch), sp.example_input(arch)).macs
