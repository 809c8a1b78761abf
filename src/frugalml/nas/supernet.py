"""Supernet training (through `frugalml.train.fit`, so it checkpoints and resumes) and loading.

Each optimizer step trains sub-networks sampled from the space:

- `uniform` (HAT): one random sub-network per step.
- `sandwich` (BigNAS / OFA-style): the largest, the smallest and `subnets` random
  sub-networks; the largest learns from the labels, the others by in-place distillation
  from it (`distill=True`) or from the labels too (`distill=False`). Distillation suits the
  `cnn` space; in the `transformer` space (sorting) a largest net that is itself still
  learning is a poor teacher (after 30 epochs the smallest sub-network decodes about half as
  many validation strings with distillation as without: `benchmarks/bench_nas_distill.py`).
- `progressive` (OFA's progressive shrinking): the stages of `space.shrink_stages()` one
  after the other, each a run of its own (fresh optimizer and cosine schedule, in
  `<out>/stage<i>-<name>/`, resumable): first the largest network alone, then each stage
  makes more genes elastic (the CNN: kernel size and resolution, then depth, then expand
  ratio) and trains sandwich-style inside what is elastic so far - the largest, the
  smallest and `subnets` random sub-networks with every other gene at its largest value.
  The shrinking stages run at `stage_lr` x the learning rate; before a stage the space may
  rearrange the weights (the CNN sorts its hidden channels by importance before the expand
  stage, so narrow sub-networks keep the most important ones). `stage_epochs` splits the
  epochs (default: 30% to the largest network, the rest evenly).

The step counter lives in a buffer of the supernet, so it is saved in fit's checkpoint and a
resumed run samples exactly the sub-networks the uninterrupted run would have sampled.

Evaluation of a sub-network (`Evaluator`): extract it with the shared weights,
recalibrate its BatchNorm statistics on training data, score it on the validation split.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from frugalml.distributed import is_main
from frugalml.errors import FrugalError
from frugalml.files import check_run_config, read_json, to_json, write_json
from frugalml.models import space as spaces
from frugalml.report.cliopts import config_from_dict
from frugalml.train import CHECKPOINT, TrainConfig, fit, load_weights, save_weights

META = "nas.json"
WEIGHTS = "supernet.safetensors"


def supernet_training(**changes) -> TrainConfig:
    """The training a supernet gets by default (Adam, cosine, one thread), with `changes` applied."""
    base = {"epochs": 40, "batch_size": 64, "lr": 0.003, "optimizer": "adam", "schedule": "cosine", "threads": 1}
    return TrainConfig(**(base | changes))


@dataclass
class SupernetConfig:
    space: str = "cnn"
    sampling: str = "sandwich"  # uniform | sandwich
    subnets: int = 2  # random sub-networks per step besides the largest and smallest (sandwich)
    distill: bool = True  # sandwich: the smaller sub-networks learn from the largest's outputs, else from labels
    seed: int = 0
    quick: bool = False  # small data set (tests, demo)
    # the supernet's training; its seed is replaced by the config's own
    train: TrainConfig = field(default_factory=supernet_training)
    stage_epochs: tuple = ()  # progressive: epochs per stage of the space's shrink_stages() (): split train.epochs
    stage_lr: float = 0.3  # progressive: learning rate of the shrinking stages, a fraction of train.lr

    def validate(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise FrugalError(f"unknown sampling '{self.sampling}' ({', '.join(SAMPLINGS)})")
        if self.subnets < 0:
            raise FrugalError(f"subnets must be >= 0, got {self.subnets}")
        if self.train.epochs < 1:
            raise FrugalError(f"epochs must be >= 1, got {self.train.epochs}")
        if not 0 < self.stage_lr <= 1:
            raise FrugalError(f"stage_lr must be in (0, 1], got {self.stage_lr:g}")
        if self.stage_epochs and (min(self.stage_epochs) < 1 or sum(self.stage_epochs) != self.train.epochs):
            raise FrugalError(
                f"stage_epochs {list(self.stage_epochs)} must be >= 1 each and add up to the {self.train.epochs} epochs"
            )
        if self.sampling == "progressive":
            self.stages(spaces.get(self.space))  # enough epochs for every stage
        self.train.validate()

    def stages(self, space: spaces.SearchSpace) -> list[tuple[str, tuple, int]]:
        """Progressive shrinking: (name, genes elastic in this stage, epochs) of each stage."""
        named = space.shrink_stages()
        if self.stage_epochs:
            if len(self.stage_epochs) != len(named):
                raise FrugalError(
                    f"stage_epochs has {len(self.stage_epochs)} entries; the '{self.space}' space shrinks in "
                    f"{len(named)} stages ({', '.join(n for n, _ in named)})"
                )
            epochs = list(self.stage_epochs)
        else:
            epochs = split_epochs(self.train.epochs, len(named))
        out, elastic = [], ()
        for (name, genes), e in zip(named, epochs, strict=True):
            elastic += tuple(genes)
            out.append((name, elastic, e))
        return out


SAMPLINGS = ("uniform", "sandwich", "progressive")


def split_epochs(epochs: int, stages: int, first: float = 0.3) -> list[int]:
    """Epochs per stage: `first` of them (rounded) to stage 0, the rest as evenly as can be."""
    if epochs < stages:
        raise FrugalError(f"progressive shrinking has {stages} stages: it needs at least {stages} epochs, got {epochs}")
    e0 = min(max(1, round(first * epochs)), epochs - (stages - 1))
    rest, extra = divmod(epochs - e0, stages - 1)
    return [e0] + [rest + (1 if i < extra else 0) for i in range(stages - 1)]


def make_loss(
    space: spaces.SearchSpace,
    sampling: str,
    seed: int,
    subnets: int = 1,
    distill: bool = True,
    elastic: tuple | None = None,
):
    """A `fit` loss function that trains sampled sub-networks; in eval mode it scores the largest.

    `elastic`: the genes that vary (a stage of progressive shrinking); the others stay at their
    largest value. None: all of them."""
    largest = space.largest()
    if elastic is None:
        smallest, sample = space.smallest(), space.sample
    else:
        smallest = space.canonical({g: (v[0] if g in elastic else v[-1]) for g, v in space.genes.items()})

        def sample(rng):
            return space.canonical({g: (rng.choice(v) if g in elastic else v[-1]) for g, v in space.genes.items()})

    def loss_fn(model, x, y):
        if not model.training:
            space.set_active(model, largest)
            loss, correct, _ = space.loss(model, x, y)
            return loss, correct
        step = int(model.nas_step)
        model.nas_step += 1
        rng = random.Random(seed * 1_000_003 + step)
        if sampling == "uniform":
            space.set_active(model, sample(rng))
            loss, correct, _ = space.loss(model, x, y)
            return loss, correct
        space.set_active(model, largest)
        loss, correct, logits = space.loss(model, x, y)
        if elastic == ():  # progressive shrinking's first stage: the largest network alone
            return loss, correct
        teacher = logits.detach() if distill else None
        for arch in (smallest, *(sample(rng) for _ in range(subnets))):
            space.set_active(model, arch)
            sub_loss, _, _ = space.loss(model, x, y, teacher_logits=teacher)
            loss = loss + sub_loss
        return loss, correct

    return loss_fn


def check_resumable(cfg: SupernetConfig, out: str | Path) -> None:
    """Refuse (as `train_supernet` would) a run directory bound to another configuration; writes nothing."""
    cfg.validate()
    import json

    meta = json.loads(to_json({"config": asdict(cfg), "space_config": spaces.get(cfg.space).config}))
    path = Path(out) / META
    if path.is_file() and read_json(path) != meta:
        old = read_json(path)
        diff = sorted(k for k in set(old) | set(meta) if old.get(k) != meta.get(k))
        raise FrugalError(
            f"{out} holds a supernet with a different configuration ({', '.join(diff)} differ): "
            "choose another --out or delete it"
        )


def train_supernet(cfg: SupernetConfig, out: str | Path, track: bool = True, progress: bool | None = None) -> dict:
    """Train (or resume, or return the finished) supernet in run directory `out`."""
    cfg.validate()
    out = Path(out)
    space = spaces.get(cfg.space)
    meta = {"config": asdict(cfg), "space_config": space.config}
    main = is_main()  # under torchrun (`nas train --nproc`) every process trains, rank 0 alone writes
    # fit binds the same directory to its training config (config.json); the supernet's own is nas.json
    if main:
        check_run_config(out, meta, META, what="supernet")
    else:
        check_resumable(cfg, out)
    if (out / "result.json").exists():
        return read_json(out / "result.json")
    train, _val, _test = space.dataset(quick=cfg.quick)
    net = space.build_supernet(seed=cfg.seed)
    net.register_buffer("nas_step", torch.zeros((), dtype=torch.long))
    stages = None
    if cfg.sampling == "progressive":
        res, stages = _fit_stages(cfg, space, net, train, out, track, progress)
    else:
        loss_fn = make_loss(space, cfg.sampling, cfg.seed, cfg.subnets, cfg.distill)
        tc = replace(cfg.train, seed=cfg.seed)
        res = fit(
            net, train, tc, out, loss_fn=loss_fn, track=track, progress=progress, description=f"supernet {cfg.space}"
        )
    if not main:
        return {"config": asdict(cfg), "history": res.history, "processes": res.processes}
    save_weights(net, out / WEIGHTS)
    result = {
        "space": cfg.space,
        "config": asdict(cfg),
        "seconds": res.seconds,
        "resumed_from_epoch": res.resumed_from_epoch,
        "history": res.history,
        "largest_val_accuracy_unrecalibrated": res.final.get("test_accuracy"),
        "tracking": res.tracking,
        "params": sum(p.numel() for p in net.parameters()),
        "processes": res.processes,
    }
    if stages is not None:
        result["stages"] = stages
    write_json(out / "result.json", result)
    return result


def _fit_stages(cfg: SupernetConfig, space, net, train, out: Path, track: bool, progress: bool | None):
    """Progressive shrinking: one `fit` run per stage in `<out>/stage<i>-<name>/` (each resumes or,
    when finished, just loads its weights); the result of the last with every stage's history,
    time and spent compute added up."""
    from frugalml.cost.tracker import SPENT_FILE, add_segments, read_segments

    total, history, stages, segments = 0.0, [], [], []
    for i, (name, elastic, epochs) in enumerate(cfg.stages(space)):
        run = out / f"stage{i}-{name}"
        if not (run / CHECKPOINT).is_file():
            space.before_stage(net, name)  # a resumed stage's checkpoint already holds the rearranged weights
        lr = cfg.train.lr * (1.0 if i == 0 else cfg.stage_lr)
        tc = replace(cfg.train, seed=cfg.seed + 7919 * i, epochs=epochs, lr=lr)
        loss_fn = make_loss(space, "sandwich", cfg.seed + 7919 * i, cfg.subnets, cfg.distill, elastic=elastic)
        what = f"supernet {cfg.space} stage {i} ({name})"
        res = fit(net, train, tc, run, loss_fn=loss_fn, track=track, progress=progress, description=what)
        start = len(history)
        history += [h | {"epoch": start + h["epoch"], "stage": name} for h in res.history]
        total += res.seconds
        stages.append(
            {"name": name, "elastic_genes": list(elastic), "epochs": epochs, "lr": lr, "seconds": res.seconds}
        )
        segments += read_segments(run) if track else []
    res.seconds, res.history = total, history
    if track and is_main():
        res.tracking = add_segments(segments)
        write_json(out / SPENT_FILE, {"segments": segments, "total": res.tracking})
    return res, stages


def train_job(config: dict, out: str) -> None:
    """What each process of `frugal nas train --nproc N` runs (`frugalml.distributed.launch`)."""
    train_supernet(config_from_dict(SupernetConfig, config, where="--nproc job"), out, track=True)


def load_supernet(run: str | Path):
    """(space, supernet in eval mode, meta) from a finished `train_supernet` run directory."""
    run = Path(run)
    if not (run / META).is_file():
        raise FrugalError(f"{run} is not a supernet run directory (no {META}); run `frugal nas train` first")
    if not (run / WEIGHTS).is_file():
        raise FrugalError(f"{run}: supernet training has not finished (no {WEIGHTS}); rerun `frugal nas train`")
    meta = read_json(run / META)
    cfg = config_from_dict(SupernetConfig, meta["config"], where=str(run / META))
    space = spaces.get(cfg.space)
    if space.config != meta["space_config"]:
        raise FrugalError(f"{run}: search space '{cfg.space}' settings changed since training")
    net = space.build_supernet(seed=cfg.seed)
    net.register_buffer("nas_step", torch.zeros((), dtype=torch.long))
    load_weights(net, run / WEIGHTS)
    net.eval()
    torch.set_num_threads(1)  # sub-networks are tiny; a second thread only spins on a shared CPU
    return space, net, meta


class Evaluator:
    """Validation accuracy of sub-networks of one supernet, cached by architecture."""

    def __init__(self, space, supernet, train, val, cache: dict | None = None):
        self.space, self.supernet, self.train, self.val = space, supernet, train, val
        self.cache: dict[str, float] = dict(cache or {})
        self.evaluations = 0  # calls that had to run the network
        self.seconds = 0.0

    def subnet(self, arch: dict):
        sub = self.space.extract(self.supernet, arch)
        self.space.prepare(sub, self.train)
        return sub

    def __call__(self, arch: dict) -> float:
        key = self.space.key(arch)
        if key not in self.cache:
            t0 = time.perf_counter()
            self.cache[key] = self.space.evaluate(self.subnet(arch), self.val)
            self.seconds += time.perf_counter() - t0
            self.evaluations += 1
        return self.cache[key]
