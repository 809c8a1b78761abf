import random

import pytest

from frugalml.errors import FrugalError
from frugalml.models import space as spaces
from frugalml.nas import search


class Toy(spaces.SearchSpace):
    """6 genes with values 0..4: accuracy and latency both grow with the genes."""

    name = "toy"
    genes = {f"g{i}": (0, 1, 2, 3, 4) for i in range(6)}


def toy_accuracy(a):
    # concave in each gene: the best use of a latency budget spreads it over the genes
    return sum(min(v, 3) + 0.1 * v for v in a.values()) / 20


def toy_latency(a):
    return 1.0 + sum(a.values())


def test_evolution_respects_the_budget_and_reaches_the_optimum():
    sp = Toy()
    cfg = search.EvolutionConfig(population=20, parents=5, mutations=8, crossovers=7, iterations=6, seed=0)
    res = search.evolve(sp, toy_accuracy, toy_latency, 13.0, cfg, progress=False)
    assert toy_latency(res["arch"]) <= 13.0
    # optimum under latency 13: twelve units spread as 2,2,2,2,2,2 -> acc (12 + 1.2) / 20
    assert res["accuracy"] == pytest.approx(13.2 / 20)
    rnd = search.random_search(sp, toy_accuracy, toy_latency, 13.0, evaluations=20, seed=0)
    assert rnd["accuracy"] <= res["accuracy"] + 1e-9 and toy_latency(rnd["arch"]) <= 13.0


def test_a_killed_search_resumes_from_its_last_generation(tmp_path):
    sp = Toy()
    cfg = search.EvolutionConfig(population=12, parents=4, mutations=4, crossovers=4, iterations=5, seed=3)
    full = search.evolve(sp, toy_accuracy, toy_latency, 10.0, cfg, progress=False)

    class Killed(Exception):
        pass

    def kill_after_two(state):
        if state["generation"] == 2:
            raise Killed

    path = tmp_path / "state.json"
    with pytest.raises(Killed):
        search.evolve(
            sp, toy_accuracy, toy_latency, 10.0, cfg, state_path=path, on_generation=kill_after_two, progress=False
        )
    resumed = search.evolve(sp, toy_accuracy, toy_latency, 10.0, cfg, state_path=path, progress=False)
    assert resumed["resumed_from_generation"] == 2
    assert resumed["arch"] == full["arch"] and resumed["history"] == full["history"]
    with pytest.raises(FrugalError, match="other settings"):
        search.evolve(sp, toy_accuracy, toy_latency, 11.0, cfg, state_path=path, progress=False)


def test_a_budget_no_subnetwork_meets_names_the_smallest_achievable():
    with pytest.raises(FrugalError, match="smallest achievable is 1 ms"):
        search.evolve(Toy(), toy_accuracy, toy_latency, 0.5, progress=False)


def test_nondominated_and_hypervolume_by_hand():
    pts = [(0.9, 1.0, {}), (0.8, 0.5, {}), (0.7, 0.8, {}), (0.85, 1.5, {})]
    front = search.nondominated(pts)
    assert [(a, lt) for a, lt, _ in front] == [(0.8, 0.5), (0.9, 1.0)]
    # error/latency points (0.1, 1.0), (0.2, 0.5) up to reference (1.0, 2.0): 0.9 * 1.0 + 0.8 * 0.5
    assert search.hypervolume(front, ref_latency=2.0) == pytest.approx(1.3)


def test_nsga2_front_is_nondominated_and_at_least_as_good_as_random():
    sp = Toy()
    nsga = search.pareto(sp, toy_accuracy, toy_latency, population=16, generations=8, seed=0)
    rnd = search.random_front(sp, toy_accuracy, toy_latency, nsga["evaluations"], seed=0)
    f = nsga["front"]
    assert all(f[i][1] < f[i + 1][1] and f[i][0] < f[i + 1][0] for i in range(len(f) - 1))
    ref = 1.1 * toy_latency(sp.largest())
    assert search.hypervolume(f, ref) >= search.hypervolume(rnd["front"], ref)


class ToySkip(Toy):
    """Toy in which g5 has no effect while g0 = 0 (like the genes of a skipped layer)."""

    def canonical(self, arch):
        return {**arch, "g5": 0} if arch["g0"] == 0 else dict(arch)


def test_nsga2_evaluates_only_distinct_networks_from_both_ends_of_the_space():
    sp = ToySkip()
    calls = []

    def acc(a):
        calls.append(sp.key(a))
        return toy_accuracy(a)

    nsga = search.pareto(sp, acc, toy_latency, population=10, generations=6, seed=1)
    # every evaluation is a network not seen before (canonically: g5 is ignored while g0 = 0)
    assert len(calls) == len(set(calls)) == nsga["evaluations"] == 60
    assert sp.key(sp.smallest()) in calls[:10] and sp.key(sp.largest()) in calls[:10]
    calls.clear()
    rnd = search.random_front(sp, acc, toy_latency, 60, seed=1)  # the control gets as many distinct networks
    assert len(calls) == len(set(calls)) == rnd["evaluations"] == 60


def test_evolution_config_is_checked():
    with pytest.raises(FrugalError, match="parents"):
        search.EvolutionConfig(population=5, parents=6).validate()
    rng = random.Random(0)
    assert search.smallest_achievable(Toy(), toy_latency, samples=10, seed=rng.randint(0, 9))[0] == 1.0


def test_a_budget_at_the_smallest_network_still_gets_a_population_grown_from_it():
    from frugalml.models import space as sps
    from frugalml.nas import search as srch

    sp = sps.get("cnn")
    lat = lambda a: sp.macs(a) / 1e6  # noqa: E731
    budget = lat(sp.smallest()) * 1.02  # random samples essentially never get here
    cfg = srch.EvolutionConfig(population=6, parents=2, mutations=2, crossovers=2, iterations=2, max_resample=20)
    res = srch.evolve(sp, lambda a: -lat(a), lat, budget, cfg)
    assert lat(res["arch"]) <= budget


def test_a_budget_at_the_fastest_known_network_works_when_that_is_not_the_smallest():
    from frugalml.models import space as sps
    from frugalml.nas import search as srch

    sp = sps.get("cnn")
    small = sp.key(sp.smallest())

    def lat(a):  # a predictor that gets the smallest network wrong, as a fitted MLP may
        return sp.macs(a) / 1e6 + (100.0 if sp.key(a) == small else 0.0)

    low, fastest = srch.smallest_achievable(sp, lat)
    assert sp.key(fastest) != small
    cfg = srch.EvolutionConfig(population=6, parents=2, mutations=2, crossovers=2, iterations=2, max_resample=20)
    res = srch.evolve(sp, lambda a: -lat(a), lat, low, cfg)
    assert lat(res["arch"]) <= low


def test_nsga2_starts_from_the_fastest_network_the_latency_model_knows():
    sp = spaces.get("cnn")
    small = sp.key(sp.smallest())

    def lat(a):  # the smallest network predicted slow, as a fitted MLP may have it
        return sp.macs(a) / 1e6 + (100.0 if sp.key(a) == small else 0.0)

    low, fastest = search.smallest_achievable(sp, lat)
    calls = []

    def acc(a):
        calls.append(sp.key(a))
        return sp.macs(a) / 1e8

    nsga = search.pareto(sp, acc, lat, population=6, generations=2, seed=0)
    assert calls[0] == sp.key(fastest) and sp.key(sp.smallest()) in calls[:6]
    assert min(lt for _, lt, _ in nsga["front"]) == pytest.approx(low)
