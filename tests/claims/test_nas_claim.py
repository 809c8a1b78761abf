"""Claim: the searched net meets its latency budget on a modelled target (rpi4).

On a modelled device the search's constraint and the "measured" latency are the same roofline
model, so this checks that the search honours its constraint (and that the budget binds),
not a prediction against hardware."""

from frugalml.nas.pipeline import predictor_for, search_step
from frugalml.nas.search import EvolutionConfig
from frugalml.nas.supernet import SupernetConfig, load_supernet, supernet_training, train_supernet


def test_searched_net_is_within_budget_on_rpi4(tmp_path):
    cfg = SupernetConfig(sampling="uniform", quick=True, train=supernet_training(epochs=1, batch_size=128))
    train_supernet(cfg, tmp_path, track=False, progress=False)
    space = load_supernet(tmp_path)[0]
    model = predictor_for(space, tmp_path, "rpi4")
    largest, smallest = model.predict(space.largest()), model.predict(space.smallest())
    budget = round((largest + smallest) / 2, 4)  # halfway: the largest net does not fit
    evo = EvolutionConfig(population=8, parents=3, mutations=3, crossovers=2, iterations=2)
    out = search_step(tmp_path, "rpi4", budget, evo, progress=False)
    print(
        f"rpi4 (modelled): largest {largest:.4f} ms, smallest {smallest:.4f} ms, budget {budget} ms, "
        f"searched {out['measured_latency_ms']:.4f} ms, {out['macs']:,} MACs, test accuracy {out['test_accuracy']:.3f}"
    )
    assert out["modelled"] is True and out["device"] == "rpi4"
    assert largest > 1.5 * budget
    assert out["measured_latency_ms"] <= budget
    assert out["measured_latency_ms"] == out["predicted_latency_ms"]  # modelled: one model for both
    space.validate(out["arch"])
    assert out["macs"] == space.macs(out["arch"]) < space.macs(space.largest())
