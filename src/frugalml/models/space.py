"""Search spaces: families of models, a registry and the small interface that searches rely on.

A search space is a set of *genes* (name -> allowed values, in order from small to large).
An architecture (`arch`) is a plain dict gene -> value, so it is JSON as it stands. The
generic parts of `frugalml.nas` (latency collection, predictors, evolutionary and Pareto
search, export) only ever talk to a space through this interface:

    from frugalml.models import space as spaces
    space = spaces.get("cnn")               # registry lookup (loads the spaces techniques offer)
    arch = space.sample(rng)                # random architecture (random.Random)
    space.validate(arch)                    # FrugalError naming the bad gene
    net = space.build_supernet(seed=0)      # weight-sharing supernet (nn.Module)
    sub = space.extract(net, arch)          # standalone nn.Module with the shared weights
    space.example_input(arch)               # batch-1 input for latency measurement
    space.macs(arch)                        # counted MACs of one forward pass
    space.features(arch)                    # numeric vector for the latency predictor
    space.dataset(...) / space.evaluate(...) / space.loss(...)   # data and scoring

A new space subclasses `SearchSpace`, fills in `genes` and the `build_*`/`extract`/
`evaluate` methods, and registers itself:

    @register("myspace")
    class MySpace(SearchSpace): ...

`get(name)` first imports the modules the technique table lists as offering spaces
(`frugalml.techniques`), so spaces defined by any technique are found; one whose package
is not installed is skipped.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from frugalml.errors import FrugalError
from frugalml.techniques import optional_import, space_modules

_REGISTRY: dict[str, Callable[[], SearchSpace]] = {}


def register(name: str):
    """Class (or factory) decorator: `get(name)` will return an instance of it."""

    def deco(cls):
        _REGISTRY[name] = cls
        return cls

    return deco


def _load() -> None:
    for module in space_modules():
        optional_import(module)


def names() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def get(name: str, **kwargs) -> SearchSpace:
    _load()
    if name not in _REGISTRY:
        raise FrugalError(f"unknown search space '{name}' (known: {', '.join(sorted(_REGISTRY)) or 'none'})")
    space = _REGISTRY[name](**kwargs)
    space.name = name
    return space


class SearchSpace:
    """Base class. Subclasses set `genes` and implement the methods that raise NotImplementedError."""

    name: str = "?"
    genes: dict[str, tuple] = {}
    # Settings of the space (data set size, widths...) that a run directory records.
    config: dict = {}

    # ---- genes: generic helpers -------------------------------------------------------
    def validate(self, arch: dict) -> dict:
        """Return `arch` if every gene is present with an allowed value; else FrugalError naming the gene."""
        if not isinstance(arch, dict):
            raise FrugalError(f"architecture must be a JSON object of genes, got {type(arch).__name__}")
        for gene, allowed in self.genes.items():
            if gene not in arch:
                raise FrugalError(f"architecture lacks gene '{gene}' (allowed values {list(allowed)})")
            if arch[gene] not in allowed:
                raise FrugalError(
                    f"gene '{gene}' = {arch[gene]!r} is outside the '{self.name}' search space "
                    f"(allowed: {list(allowed)})"
                )
        extra = sorted(set(arch) - set(self.genes))
        if extra:
            raise FrugalError(f"unknown gene '{extra[0]}' for search space '{self.name}'")
        return arch

    def sample(self, rng: random.Random) -> dict:
        return self.canonical({g: rng.choice(v) for g, v in self.genes.items()})

    def mutate(self, arch: dict, prob: float, rng: random.Random) -> dict:
        """Each gene is resampled with probability `prob` (HAT: 0.3)."""
        out = {g: (rng.choice(v) if rng.random() < prob else arch[g]) for g, v in self.genes.items()}
        return self.canonical(out)

    def crossover(self, a: dict, b: dict, rng: random.Random) -> dict:
        """Uniform crossover: each gene from either parent with probability 1/2."""
        return self.canonical({g: (a[g] if rng.random() < 0.5 else b[g]) for g in self.genes})

    def smallest(self) -> dict:
        return self.canonical({g: v[0] for g, v in self.genes.items()})

    def largest(self) -> dict:
        return self.canonical({g: v[-1] for g, v in self.genes.items()})

    def canonical(self, arch: dict) -> dict:
        """Map genes that have no effect (e.g. of skipped layers) to a fixed value, so equal nets compare equal."""
        return dict(arch)

    def key(self, arch: dict) -> str:
        c = self.canonical(arch)
        return "|".join(f"{g}={c[g]}" for g in self.genes)

    def to_index(self, arch: dict) -> list[int]:
        return [self.genes[g].index(arch[g]) for g in self.genes]

    def from_index(self, idx) -> dict:
        return self.canonical({g: v[int(i)] for (g, v), i in zip(self.genes.items(), idx, strict=True)})

    def shrink_stages(self) -> list[tuple[str, tuple[str, ...]]]:
        """Progressive shrinking (OFA): (stage name, genes that become elastic in it), in order; the
        first stage trains the largest network alone. Default: then every gene at once."""
        return [("largest", ()), ("elastic", tuple(self.genes))]

    def before_stage(self, supernet, stage: str) -> None:
        """Rearrange a supernet's weights before a stage of progressive shrinking (default: nothing)."""

    def features(self, arch: dict) -> list[float]:
        """Numeric description for latency predictors; default: each gene's value scaled by its maximum."""
        return [float(arch[g]) / float(max(v)) for g, v in self.genes.items()]

    # ---- networks ---------------------------------------------------------------------
    def build_supernet(self, seed: int = 0):
        """The weight-sharing supernet (an nn.Module), initialised with `seed`."""
        raise NotImplementedError

    def set_active(self, supernet, arch: dict) -> None:
        """Make `supernet` run as sub-network `arch` (for supernet training)."""
        raise NotImplementedError

    def extract(self, supernet, arch: dict):
        """A standalone nn.Module of `arch` holding copies of the supernet's shared weights."""
        raise NotImplementedError

    def build_subnet(self, arch: dict, seed: int = 0):
        """A standalone nn.Module of `arch`, freshly initialised (for training from scratch / loading)."""
        raise NotImplementedError

    def example_input(self, arch: dict):
        """Batch-1 input the sub-network takes (a tensor or a tuple of tensors)."""
        raise NotImplementedError

    def macs(self, arch: dict) -> int:
        from frugalml.cost.counting import profile

        return profile(self.build_subnet(arch), self.example_input(arch)).macs

    def operators(self, arch: dict) -> list[tuple[str, Callable]]:
        """Per-operator decomposition for a lookup-table predictor: (key, factory() -> (module, input)).

        Spaces that do not provide it cannot use the lookup-table predictor (the MLP still works).
        """
        raise NotImplementedError

    # ---- data and scoring -------------------------------------------------------------
    def dataset(self, quick: bool = False):
        """(train, val, test) `frugalml.data.Dataset`s; `val` is held out of train for the search."""
        raise NotImplementedError

    def loss(self, model, x, y):
        """(loss, n_correct) of a batch, as `frugalml.train.fit` expects."""
        raise NotImplementedError

    def prepare(self, subnet, train) -> None:
        """Make an extracted sub-network ready to evaluate (e.g. recalibrate BatchNorm statistics)."""

    def evaluate(self, subnet, ds, split: str = "test") -> float:
        """Accuracy (0..1) of a standalone sub-network on `ds`'s test tensors."""
        raise NotImplementedError
