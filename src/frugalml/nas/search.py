"""Search without training candidates: evolution under a budget, random search, NSGA-II fronts.

All functions are generic over a `SearchSpace` and two callables:
`accuracy(arch) -> float` (higher is better, e.g. `supernet.Evaluator`) and
`latency(arch) -> float` (ms, e.g. a fitted predictor's `predict`).

`evolve` follows HAT: a population (125) of sub-networks under the budget; each iteration
keeps the best (25 parents), adds mutants (50, each gene resampled with p = 0.3) and
crossovers (50, genes taken from either of two parents); a child over the budget is
resampled (constraint by resampling). The state is written after every generation, so a
killed search resumes from its last generation.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from frugalml.errors import FrugalError
from frugalml.files import read_json, write_json


@dataclass
class EvolutionConfig:
    population: int = 125
    parents: int = 25
    mutations: int = 50
    crossovers: int = 50
    iterations: int = 30
    mutate_prob: float = 0.3
    max_resample: int = 100
    seed: int = 0

    def validate(self) -> None:
        if self.parents < 1 or self.parents > self.population:
            raise FrugalError(f"parents must be in 1..population ({self.population}), got {self.parents}")
        if self.iterations < 1:
            raise FrugalError(f"iterations must be >= 1, got {self.iterations}")
        if not 0 <= self.mutate_prob <= 1:
            raise FrugalError(f"mutation probability must be in [0, 1], got {self.mutate_prob}")


def _rng_state(rng: random.Random):
    v, s, g = rng.getstate()
    return [v, list(s), g]


def _set_rng_state(rng: random.Random, state) -> None:
    rng.setstate((state[0], tuple(state[1]), state[2]))


def smallest_achievable(space, latency: Callable, samples: int = 300, seed: int = 0) -> tuple[float, dict]:
    """The lowest latency seen among the smallest architecture and `samples` random ones."""
    rng = random.Random(seed)
    best = (latency(space.smallest()), space.smallest())
    for _ in range(samples):
        a = space.sample(rng)
        lat = latency(a)
        if lat < best[0]:
            best = (lat, a)
    return best


def check_budget(space, latency: Callable, budget: float, unit: str = "ms", what: str = "latency") -> None:
    if not budget > 0:
        raise FrugalError(f"{what} budget must be positive, got {budget}")
    low, _ = smallest_achievable(space, latency)
    if budget < low:
        raise FrugalError(
            f"no sub-network of '{space.name}' meets a {what} budget of {budget:.4g} {unit}: "
            f"the smallest achievable is {low:.4g} {unit}"
        )


def _feasible(make: Callable[[], dict], latency: Callable, budget: float, tries: int) -> dict | None:
    for _ in range(tries):
        a = make()
        if latency(a) <= budget:
            return a
    return None


def evolve(
    space,
    accuracy: Callable[[dict], float],
    latency: Callable[[dict], float],
    budget: float,
    cfg: EvolutionConfig | None = None,
    state_path: str | Path | None = None,
    progress: bool | None = None,
    on_generation: Callable[[dict], None] | None = None,
) -> dict:
    """Best architecture under `budget` found by HAT-style evolution; resumes from `state_path`."""
    from frugalml.report.progress import progress as progress_bar

    cfg = cfg or EvolutionConfig()
    cfg.validate()
    check_budget(space, latency, budget)
    rng = random.Random(cfg.seed)
    state = _saved_search(state_path, cfg, budget)
    if state is None:
        state = {
            "config": asdict(cfg),
            "budget": budget,
            "generation": 0,
            "population": _first_population(space, latency, budget, cfg, rng),
            "history": [],
            "seconds": 0.0,
            "rng": _rng_state(rng),
        }
    else:
        _set_rng_state(rng, state["rng"])
    t0 = time.perf_counter()
    resumed_from = state["generation"]
    with progress_bar(cfg.iterations - state["generation"], f"evolve <= {budget:.3g}", progress) as advance:
        while state["generation"] < cfg.iterations:
            parents, best_acc = _select_parents(state, accuracy, latency, cfg.parents)
            if state["generation"] < cfg.iterations:
                state["population"] = parents + _offspring(space, parents, latency, budget, cfg, rng)
            state["rng"] = _rng_state(rng)
            state["seconds"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            if state_path is not None:
                write_json(state_path, state)
            if on_generation is not None:
                on_generation(state)
            advance(1, acc=best_acc)
    best = state["best"]
    return {
        "arch": best,
        "accuracy": accuracy(best),
        "predicted_latency": latency(best),
        "budget": budget,
        "generations": state["generation"],
        "resumed_from_generation": resumed_from,
        "history": state["history"],
        "search_seconds": state["seconds"],
    }


def _saved_search(state_path: str | Path | None, cfg: EvolutionConfig, budget: float) -> dict | None:
    """The state of an interrupted search at `state_path`, if any; it must have the same settings."""
    if state_path is None or not Path(state_path).exists():
        return None
    state = read_json(state_path)
    if state.get("config") != asdict(cfg) or state.get("budget") != budget:
        raise FrugalError(f"{state_path} holds a search with other settings: use another --out or delete it")
    return state


def _first_population(space, latency: Callable, budget: float, cfg: EvolutionConfig, rng: random.Random) -> list:
    """`cfg.population` random networks under the budget (near the fastest one, for a tight budget)."""
    population, smallest = [], smallest_achievable(space, latency)[1]  # fastest known network
    for _ in range(cfg.population):
        a = _feasible(lambda: space.sample(rng), latency, budget, cfg.max_resample * 10)
        if a is None:  # a budget near the fastest network: grow the population from it instead
            a = _feasible(lambda: space.mutate(smallest, cfg.mutate_prob, rng), latency, budget, cfg.max_resample)
        if a is None and latency(smallest) <= budget:
            a = smallest
        if a is None:
            raise FrugalError(f"could not sample sub-networks under {budget:.4g}: raise the budget")
        population.append(a)
    return population


def _select_parents(state: dict, accuracy: Callable, latency: Callable, n_parents: int) -> tuple[list, float]:
    """Rank the population, record the generation in `state`; the best `n_parents` and the best accuracy."""
    pop = state["population"]
    scored = sorted(((accuracy(a), -latency(a), i) for i, a in enumerate(pop)), reverse=True)
    best_acc, neg_lat, best_i = scored[0]
    state["history"].append(
        {
            "generation": state["generation"],
            "best_accuracy": best_acc,
            "best_latency": -neg_lat,
            "mean_accuracy": sum(s[0] for s in scored) / len(scored),
        }
    )
    state["best"] = pop[best_i]
    state["generation"] += 1
    return [pop[i] for _, _, i in scored[:n_parents]], best_acc


def _offspring(space, parents: list, latency: Callable, budget: float, cfg: EvolutionConfig, rng) -> list:
    """Mutants then crossovers of `parents` under the budget (a parent stands in for a child never found)."""
    mutants = []
    for _ in range(cfg.mutations):
        p = rng.choice(parents)
        child = _feasible(lambda p=p: space.mutate(p, cfg.mutate_prob, rng), latency, budget, cfg.max_resample)
        mutants.append(child or p)
    crosses = []
    for _ in range(cfg.crossovers):
        a, b = rng.choice(parents), rng.choice(parents)
        child = _feasible(lambda a=a, b=b: space.crossover(a, b, rng), latency, budget, cfg.max_resample)
        crosses.append(child or a)
    return mutants + crosses


def random_search(space, accuracy: Callable, latency: Callable, budget: float, evaluations: int, seed: int = 0) -> dict:
    """Control: the best of `evaluations` random sub-networks under the budget."""
    check_budget(space, latency, budget)
    rng = random.Random(seed + 7777)
    t0 = time.perf_counter()
    best = None
    for _ in range(evaluations):
        a = _feasible(lambda: space.sample(rng), latency, budget, 1000)
        if a is None:
            continue
        score = (accuracy(a), -latency(a))
        if best is None or score > best[0]:
            best = (score, a)
    return {
        "arch": best[1],
        "accuracy": best[0][0],
        "predicted_latency": -best[0][1],
        "budget": budget,
        "evaluations": evaluations,
        "search_seconds": time.perf_counter() - t0,
    }


# ---- multi-objective -------------------------------------------------------------------


def nondominated(points: list[tuple[float, float, dict]]) -> list[tuple[float, float, dict]]:
    """Points (accuracy, latency, arch) not dominated by another (higher accuracy, lower latency), by latency."""
    out = []
    for acc, lat, a in sorted(points, key=lambda p: (p[1], -p[0])):
        if not out or acc > out[-1][0]:
            out.append((acc, lat, a))
    return out


def hypervolume(front: list[tuple[float, float, dict]], ref_latency: float, ref_error: float = 1.0) -> float:
    """Area dominated by the front in (error, latency) space up to the reference point (pymoo's HV)."""
    import numpy as np
    from pymoo.indicators.hv import HV

    pts = np.array([[1.0 - acc, lat] for acc, lat, _ in front if lat < ref_latency and 1 - acc < ref_error])
    if len(pts) == 0:
        return 0.0
    return float(HV(ref_point=np.array([ref_error, ref_latency]))(pts))


def pareto(
    space,
    accuracy: Callable,
    latency: Callable,
    population: int = 40,
    generations: int = 15,
    seed: int = 0,
    mutate_prob: float = 0.1,
    anchors: bool = True,
) -> dict:
    """Accuracy-latency front by pymoo's NSGA-II (non-dominated sorting + crowding) over the space's genes.

    The variation operators are the space's own, as in the single-objective search: uniform
    crossover and per-gene resampling (`mutate_prob`), both on canonical architectures. Every
    evaluation is a distinct sub-network: offspring equal (canonically) to any network evaluated
    before are rejected and bred again, so `evaluations` counts distinct networks and
    `random_front` can be given the same number. With `anchors`, the first population holds
    the fastest network the latency model knows (`smallest_achievable`: latency queries only,
    no accuracy evaluation), the smallest and the largest, so the front spans the whole latency
    range - where latency is flat among small networks, the smallest need not be the fastest.
    At most `population * generations` evaluations.
    """
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.optimize import minimize

    st = _FrontSearch(space, accuracy, latency, random.Random(seed + 99), mutate_prob, anchors)
    t0 = time.perf_counter()
    algo = NSGA2(pop_size=population, **_nsga2_operators(st))
    minimize(_nsga2_problem(st), algo, ("n_gen", generations), seed=seed, verbose=False)
    return {"front": nondominated(st.seen), "evaluations": len(st.seen), "search_seconds": time.perf_counter() - t0}


@dataclass
class _FrontSearch:
    """What the NSGA-II problem and operators of one `pareto` run share, and every network it evaluated."""

    space: object
    accuracy: Callable
    latency: Callable
    rng: random.Random
    mutate_prob: float
    anchors: bool
    seen: list[tuple[float, float, dict]] = field(default_factory=list)
    evaluated: set[str] = field(default_factory=set)

    def arch_of(self, x) -> dict:
        import numpy as np

        return self.space.from_index(np.round(x).astype(int))

    def index_of(self, a: dict):
        import numpy as np

        return np.array(self.space.to_index(a), dtype=float)

    def objectives(self, x) -> list[list[float]]:
        """(error, latency) of each row of genes, recorded as evaluated."""
        rows = []
        for row in x:
            a = self.arch_of(row)
            acc, lat = self.accuracy(a), self.latency(a)
            self.seen.append((acc, lat, a))
            self.evaluated.add(self.space.key(a))
            rows.append([1.0 - acc, lat])
        return rows

    def first_population(self, n_samples: int) -> list[dict]:
        """Distinct networks: the anchors (fastest known, smallest, largest) if asked, then random ones."""
        space = self.space
        archs, keys = [], set()
        anchors = []
        if self.anchors:
            anchors = [smallest_achievable(space, self.latency)[1], space.smallest(), space.largest()]
        for a in anchors:
            if space.key(a) not in keys and len(archs) < n_samples:
                keys.add(space.key(a))
                archs.append(a)
        for _ in range(100 * n_samples):
            if len(archs) >= n_samples:
                break
            a = space.sample(self.rng)
            if space.key(a) not in keys:
                keys.add(space.key(a))
                archs.append(a)
        return archs

    def distinct(self, pop, others) -> list[int]:
        """Indices in `pop` of networks new to the offspring, to `others` and to everything evaluated before."""
        keys = [self.space.key(self.arch_of(ind.X)) for ind in pop]
        seen_elsewhere = {self.space.key(self.arch_of(ind.X)) for o in others if o is not None for ind in o}
        keep, mine = [], set()
        for i, k in enumerate(keys):
            if k not in mine and k not in seen_elsewhere and k not in self.evaluated:
                keep.append(i)
            mine.add(k)
        return keep


def _nsga2_problem(st: _FrontSearch):
    """pymoo's view of the search: integer gene indices in, (error, latency) out."""
    import numpy as np
    from pymoo.core.problem import Problem

    genes = list(st.space.genes.values())

    class _Problem(Problem):
        def __init__(self):
            super().__init__(
                n_var=len(genes),
                n_obj=2,
                xl=np.zeros(len(genes)),
                xu=np.array([len(v) - 1 for v in genes], dtype=float),
            )

        def _evaluate(self, x, out, *args, **kwargs):
            out["F"] = np.array(st.objectives(x))

    return _Problem()


def _nsga2_operators(st: _FrontSearch) -> dict:
    """NSGA2's sampling, crossover, mutation and duplicate elimination, through the space's own operators."""
    import numpy as np
    from pymoo.core.crossover import Crossover
    from pymoo.core.duplicate import DuplicateElimination
    from pymoo.core.mutation import Mutation
    from pymoo.core.sampling import Sampling

    space, rng = st.space, st.rng

    class _Sampling(Sampling):
        def _do(self, problem, n_samples, **kwargs):
            return np.array([st.index_of(a) for a in st.first_population(n_samples)])

    class _Crossover(Crossover):
        def __init__(self):
            super().__init__(n_parents=2, n_offsprings=1)

        def _do(self, problem, X, **kwargs):
            pairs = zip(X[0], X[1], strict=True)
            kids = [st.index_of(space.crossover(st.arch_of(a), st.arch_of(b), rng)) for a, b in pairs]
            return np.array(kids)[None]

    class _Mutation(Mutation):
        def _do(self, problem, X, **kwargs):
            return np.array([st.index_of(space.mutate(st.arch_of(x), st.mutate_prob, rng)) for x in X])

    class _Distinct(DuplicateElimination):
        """Duplicates within the offspring, of the population, or of anything evaluated before."""

        def do(self, pop, *args, return_indices=False, to_itself=True):
            keep = st.distinct(pop, args)
            is_dup = np.ones(len(pop), dtype=bool)
            is_dup[keep] = False
            if return_indices:
                return pop[keep], np.flatnonzero(~is_dup), np.flatnonzero(is_dup)
            return pop[keep]

    return {
        "sampling": _Sampling(),
        "crossover": _Crossover(),
        "mutation": _Mutation(),
        "eliminate_duplicates": _Distinct(),
    }


def random_front(space, accuracy: Callable, latency: Callable, evaluations: int, seed: int = 0) -> dict:
    """Control for `pareto`: the non-dominated set of `evaluations` distinct uniformly random sub-networks."""
    rng = random.Random(seed + 4242)
    t0 = time.perf_counter()
    pts, keys = [], set()
    for _ in range(100 * evaluations):  # distinct networks, as `pareto` counts them
        if len(pts) >= evaluations:
            break
        a = space.sample(rng)
        if space.key(a) not in keys:
            keys.add(space.key(a))
            pts.append((accuracy(a), latency(a), a))
    return {"front": nondominated(pts), "evaluations": evaluations, "search_seconds": time.perf_counter() - t0}
