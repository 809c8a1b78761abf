import random

import pytest
import torch

from frugalml.errors import FrugalError
from frugalml.models import space as spaces
from frugalml.nas.cnn import CNNSpace


def test_registry_finds_cnn_and_rejects_unknown_names():
    assert "cnn" in spaces.names()
    assert isinstance(spaces.get("cnn"), CNNSpace)
    with pytest.raises(FrugalError, match="unknown search space 'nope'"):
        spaces.get("nope")


def test_a_registered_space_is_found_by_name():
    @spaces.register("toy-test")
    class Toy(spaces.SearchSpace):
        genes = {"a": (1, 2), "b": (3, 4, 5)}

    sp = spaces.get("toy-test")
    assert sp.name == "toy-test" and sp.smallest() == {"a": 1, "b": 3} and sp.largest() == {"a": 2, "b": 5}
    spaces._REGISTRY.pop("toy-test")


def test_validate_names_the_offending_gene():
    sp = spaces.get("cnn")
    arch = sp.largest()
    arch["s2.b1.k"] = 9
    with pytest.raises(FrugalError, match=r"gene 's2.b1.k' = 9 is outside .*allowed: \[3, 5, 7\]"):
        sp.validate(arch)
    bad = sp.largest()
    del bad["res"]
    with pytest.raises(FrugalError, match="lacks gene 'res'"):
        sp.validate(bad)
    with pytest.raises(FrugalError, match="unknown gene 'zzz'"):
        sp.validate(sp.largest() | {"zzz": 1})


def test_mutation_and_crossover_stay_in_the_space_and_follow_their_probabilities():
    sp = spaces.get("cnn")
    rng = random.Random(0)
    a, b = sp.sample(rng), sp.sample(rng)
    assert sp.mutate(a, 0.0, rng) == a
    for _ in range(50):
        sp.validate(sp.mutate(a, 1.0, rng))
        child = sp.crossover(a, b, rng)
        sp.validate(child)
        # genes of active blocks come from one of the parents
        assert all(child[g] in (a[g], b[g]) for g in ("res", "s1.d", "s2.d", "s3.d"))
    # p = 0.3: about 30% of genes change (ignoring genes canonicalised away)
    changed = [sum(sp.mutate(a, 0.3, rng)[g] != a[g] for g in ("res", "s1.d", "s2.d", "s3.d")) for _ in range(2000)]
    assert 0.18 < sum(changed) / (4 * len(changed)) < 0.30  # resampling can pick the same value (2/3 change)


def test_canonical_form_ignores_genes_of_skipped_blocks():
    sp = spaces.get("cnn")
    a = sp.largest() | {"s1.d": 1}
    b = dict(a) | {"s1.b3.k": 3, "s1.b3.e": 1}
    assert sp.key(a) == sp.key(b)
    assert sp.from_index(sp.to_index(sp.canonical(a))) == sp.canonical(a)


def test_cnn_features_zero_for_skipped_blocks():
    sp = spaces.get("cnn")
    f = sp.features(sp.smallest())
    assert len(f) == 1 + 3 * (1 + 2 * 3)
    assert f[0] == pytest.approx(24 / 40)
    # stage 1: depth 1/3, block 1 (k 3/7, e 1/3), blocks 2-3 zeros
    assert f[1:8] == pytest.approx([1 / 3, 3 / 7, 1 / 3, 0, 0, 0, 0])


def test_example_input_is_batch_one():
    sp = spaces.get("cnn")
    assert sp.example_input(sp.largest()).shape == torch.Size([1, 40])
