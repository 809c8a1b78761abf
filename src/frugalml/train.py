"""The one training loop every technique uses.

- Seeded and deterministic on CPU: the data order of epoch e depends only on (seed, e),
  so a run resumed from a checkpoint sees exactly the batches it would have seen.
- Checkpoints (model, optimizer, schedule, history) after every epoch, atomically, into
  the run directory; calling `fit` again on the same directory resumes from there, and a
  finished run returns its stored result without training.
- Tracked (`track=True`), it predicts after the first epoch it trains what the epochs will
  spend - that epoch's energy x their number, as carbontracker does - prints it as a progress
  line, and stores it in the tracking with what was actually spent and their ratio.
- Hooks: `on_step(model, optimizer, iteration)` runs after every optimizer step (and once
  with iteration 0 before the first), which is where masks are re-applied or rewind
  points captured; `loss_fn(model, x, y) -> (loss, n_correct)` replaces cross-entropy.
- Data-parallel: started by torchrun (or `frugalml.distributed.launch`), each process trains on
  its share of every global batch (`batch_size` stays the global batch) and the gradients are
  averaged across processes (`frugalml.distributed`); rank 0 alone writes the checkpoint, the
  record and the ledger, which counts the CPU time of every process.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from frugalml import distributed
from frugalml.errors import FrugalError
from frugalml.files import atomic_save, open_run
from frugalml.report.progress import progress as progress_bar
from frugalml.trainconfig import TrainConfig

CHECKPOINT = "checkpoint.pt"
TRAIN_RESULT = "train.json"  # what `frugal train` (`train_run`) returned
__all__ = ["TrainConfig", "TrainResult", "evaluate", "fit", "load_weights", "save_weights"]


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    iterations: int = 0
    seconds: float = 0.0
    resumed_from_epoch: int = 0
    tracking: dict | None = None
    processes: int = 1

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    def to_dict(self) -> dict:
        return asdict(self) | {"final": self.final}


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    logits = model(x)
    return nn.functional.cross_entropy(logits, y), (logits.argmax(1) == y).sum()


@torch.no_grad()
def _eval_sums(model: nn.Module, x, y, loss_fn: LossFn, batch_size: int) -> tuple[float, int]:
    total_loss, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        loss, n_correct = loss_fn(model, xb, yb)
        total_loss += float(loss) * len(yb)
        correct += int(n_correct)
    return total_loss, correct


def evaluate(model: nn.Module, x, y, loss_fn: LossFn = cross_entropy, batch_size: int = 1024) -> dict:
    """Mean loss and accuracy of `model` on (x, y), in eval mode."""
    was = model.training
    model.eval()
    total_loss, correct = _eval_sums(model, x, y, loss_fn, batch_size)
    model.train(was)
    n = max(len(y), 1)
    return {"loss": total_loss / n, "accuracy": correct / n}


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _schedule(opt, cfg: TrainConfig, total_steps: int):
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / max(total_steps, 1)))
        )
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch: a function of (seed, epoch) alone."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def _run_settings(model: nn.Module, dataset, config: TrainConfig) -> dict:
    # Where and how fast it runs (threads, device, processes) may change between attempts; what it computes may not.
    settings = {k: v for k, v in asdict(config).items() if k not in ("threads", "device", "eval_batch_size")}
    return settings | {"model": type(model).__name__, "data": dataset.name, "n_train": len(dataset.y_train)}


def _bind_run(run_dir: str | Path, model: nn.Module, dataset, config: TrainConfig) -> Path:
    """Create the run directory and bind it to what the run computes."""
    return open_run(run_dir, _run_settings(model, dataset, config), what="training run")


def _resume(state: bytes, model, opt, sched, device, result: TrainResult) -> tuple[int, int]:
    """Load a checkpoint (its bytes) into model, optimizer, schedule and result: (epoch, iteration)."""
    state = torch.load(io.BytesIO(state), weights_only=True, map_location=device)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    result.history, result.seconds = list(state["history"]), state["seconds"]
    result.resumed_from_epoch, result.processes = state["epoch"], state.get("processes", 1)
    return state["epoch"], state["iteration"]


def _start(run_dir, model, dataset, config: TrainConfig, opt, sched, device, result, world) -> tuple:
    """(first epoch, iteration, checkpoint path or None): bind the run directory, resume from its
    checkpoint. With several processes rank 0 reads, the others get what it read (and its weights)."""
    ckpt_path, state, error = None, None, None
    if run_dir is not None and world.main:
        try:
            ckpt_path = _bind_run(run_dir, model, dataset, config) / CHECKPOINT
            state = ckpt_path.read_bytes() if ckpt_path.exists() else None
        except FrugalError as e:
            if world.size == 1:
                raise
            error = str(e)
    if world.size > 1:
        error, state = distributed.broadcast_object((error, state))
        if error:
            raise FrugalError(error)
        distributed.sync_from_main([*model.parameters(), *model.buffers()])
    if state is None:
        return 0, 0, ckpt_path
    return (*_resume(state, model, opt, sched, device, result), ckpt_path)


def _ledger(track: bool, run_dir: Path | None, region: str | None, label: str, cpu=None):
    """What this attempt spends, added to the run's earlier attempts (`spent.json`) when tracked;
    `cpu` (a `distributed.RankCpu`) counts every process's CPU time."""
    if not track:
        return None
    from frugalml.cost.tracker import Ledger

    if cpu is None:
        return Ledger(run_dir, region=region, label=label)
    return Ledger(run_dir, region=region, label=label, cpu_seconds=cpu, cpu_note=cpu.note())


def _previous_tracking(run_dir: Path | None) -> dict | None:
    """A finished run asked to train again spends nothing new: its tracking is what it spent before."""
    from frugalml.cost.tracker import add_segments, read_segments

    segments = read_segments(run_dir) if run_dir is not None else []
    return add_segments(segments) if segments else None


PREDICTION_NOTE = (
    "energy of the first epoch this attempt trained (its evaluation and checkpoint included) x the epochs it "
    "trains, as carbontracker predicts; actual is what the attempt spent, start-up included"
)


def _predict(ledger, epochs: int, advance) -> dict:
    """After the first epoch: its energy (measured now) x the epochs to train, and a progress line saying so."""
    now = ledger.tracker.peek(fresh=True)
    first_j, co2e_g = now["energy_j"], now["co2e_g"] * epochs
    pred = {"epochs": epochs, "first_epoch_energy_j": first_j, "energy_j": first_j * epochs, "co2e_g": co2e_g}
    kwh = pred["energy_j"] / 3.6e6
    advance(0, note=f"predicted for {epochs} epochs: {kwh:.3g} kWh, {co2e_g:.3g} g CO2e (first epoch x {epochs})")
    return pred | {"note": PREDICTION_NOTE}


def _tracking(ledger, prediction: dict | None, cpu=None) -> dict | None:
    """The run's tracking, with the prediction set against what this attempt actually spent
    (and, with several processes, how their CPU time was counted)."""
    if ledger is None:
        return None
    tracking = ledger.tracking()
    if cpu is not None:
        tracking["notes"] = tracking.get("notes", {}) | {"cpu_s": cpu.note()}
    if prediction is not None:
        actual = ledger.result.energy_j
        ratio = actual / prediction["energy_j"] if prediction["energy_j"] else None
        tracking["prediction"] = prediction | {"actual_energy_j": actual, "ratio": ratio}
    return tracking


def _history_row(epoch: int, iteration: int, sum_loss: float, correct: int, n: int, test: dict, elapsed: float):
    return {
        "epoch": epoch + 1,
        "iteration": iteration,
        "train_loss": sum_loss / n,
        "train_accuracy": correct / n,
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "seconds": elapsed,
    }


def _write_record(run_dir: Path, model: nn.Module, dataset, config: TrainConfig, result: TrainResult) -> None:
    from frugalml.cost.currency import Cost
    from frugalml.report import record

    params = sum(p.numel() for p in model.parameters())
    spent = result.tracking or {"wall_s": result.seconds, "notes": {"wall_s": "training loop time (not tracked)"}}
    rec = record.build(
        "train",
        quality={"accuracy": record.metric(result.final.get("test_accuracy"), seeds=None)} if result.history else {},
        config=asdict(config) | {"processes": result.processes},
        data=dataset.name,
        model=type(model).__name__,
        after=Cost(params=params, notes={"params": "counted"}),
        spent=spent,
        artifacts={"checkpoint": CHECKPOINT, "history": CHECKPOINT}
        | ({"spent": "spent.json"} if result.tracking else {}),
    )
    record.write(run_dir, rec)


def _train_epoch(model, opt, sched, x, y, config: TrainConfig, epoch: int, iteration: int, hooks, world):
    """One pass over the data in the order of (seed, epoch): (sum of losses, correct, iteration).

    With several processes each takes its share of every batch and the sums are its own."""
    loss_fn, on_step, advance = hooks
    n = len(y)
    torch.manual_seed(config.seed * 7919 + epoch + 1 + 104_729 * world.rank)  # dropout etc.
    order = epoch_order(n, config.seed, epoch).to(x.device)
    params = [p for p in model.parameters() if p.requires_grad]
    sum_loss, correct = 0.0, 0
    for i in range(0, n, config.batch_size):
        idx, share = distributed.local_part(order[i : i + config.batch_size], world)
        loss, n_correct = loss_fn(model, x[idx], y[idx])
        bad = not torch.isfinite(loss)
        if bad and world.size == 1:
            raise _nonfinite(loss, epoch, iteration)
        opt.zero_grad(set_to_none=True)
        if world.size == 1:
            loss.backward()
        else:
            if not bad:
                (loss * share).backward()
            if distributed.average_gradients(params, bad):
                raise _nonfinite(loss, epoch, iteration)
        opt.step()
        sched.step()
        iteration += 1
        if on_step is not None:
            on_step(model, opt, iteration)
        loss_value = float(loss.detach())
        if share > 0:
            sum_loss += loss_value * len(idx)
            correct += int(n_correct)
        advance(1, epoch=epoch + 1, loss=loss_value)
    return sum_loss, correct, iteration


def _nonfinite(loss, epoch: int, iteration: int) -> FrugalError:
    value = float(loss.detach())
    value = value if not math.isfinite(value) else "non-finite on another process"
    return FrugalError(f"loss became {value} at epoch {epoch + 1}, iteration {iteration + 1}: lower the learning rate")


def _epoch_end(model, test_set, loss_fn, config: TrainConfig, sums: tuple[float, int], world, cpu):
    """(train sums over all processes, test metrics) after an epoch. Several processes: rank 0's
    buffers (BatchNorm statistics) go to all, each evaluates a slice of the test set, and one
    all_reduce adds the sums (and the CPU time each process spent, for rank 0's ledger)."""
    x_test, y_test = test_set
    if world.size == 1:
        return sums, evaluate(model, x_test, y_test, loss_fn, config.eval_batch_size)
    distributed.sync_from_main(model.buffers())
    m = len(y_test)
    lo, hi = world.rank * m // world.size, (world.rank + 1) * m // world.size
    model.eval()
    test_loss, test_correct = _eval_sums(model, x_test[lo:hi], y_test[lo:hi], loss_fn, config.eval_batch_size)
    spent = cpu.spent()
    total = distributed.all_sum([sums[0], sums[1], test_loss, test_correct, spent], device=x_test.device)
    cpu.others = total[4] - spent
    m = max(m, 1)
    return (total[0], round(total[1])), {"loss": total[2] / m, "accuracy": round(total[3]) / m}


def _save_checkpoint(ckpt_path: Path, epoch: int, iteration: int, model, opt, sched, result, elapsed: float) -> None:
    state = {
        "epoch": epoch,
        "iteration": iteration,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "history": result.history,
        "seconds": elapsed,
        "processes": result.processes,
    }
    atomic_save(ckpt_path, lambda f: f.write(_to_bytes(state)))


def fit(
    model: nn.Module,
    dataset,
    config: TrainConfig,
    run_dir: str | Path | None = None,
    *,
    on_step: Callable[[nn.Module, torch.optim.Optimizer, int], None] | None = None,
    loss_fn: LossFn = cross_entropy,
    track: bool = False,
    region: str | None = None,
    progress: bool | None = None,
    description: str = "train",
) -> TrainResult:
    """Train `model` on `dataset` (a `frugalml.data.Dataset`); resume if `run_dir` has a checkpoint.

    Under torchrun (WORLD_SIZE > 1) this process trains as one rank of a data-parallel world."""
    config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    world, device = distributed.join(config.device)
    model.to(device)
    x, y = dataset.x_train.to(device), dataset.y_train.to(device)
    test_set = (dataset.x_test.to(device), dataset.y_test.to(device))
    n = len(y)
    if n == 0:
        raise FrugalError(f"dataset '{dataset.name}' has no training examples")
    if world.size > 1:
        distributed.check_nproc(world.size, config.batch_size, n)
    steps_per_epoch = math.ceil(n / config.batch_size)
    opt = make_optimizer(model, config)
    sched = _schedule(opt, config, steps_per_epoch * config.epochs)
    result = TrainResult(processes=world.size)
    start_epoch, iteration, ckpt_path = _start(run_dir, model, dataset, config, opt, sched, device, result, world)
    run_dir = None if run_dir is None or not world.main else Path(run_dir)
    if start_epoch >= config.epochs:
        result.iterations = iteration
        result.tracking = _previous_tracking(run_dir) if track else None
        return result
    result.processes = world.size

    cpu = distributed.RankCpu(world) if world.size > 1 else None
    ledger = _ledger(track and world.main, run_dir, region, description, cpu)
    if on_step is not None and iteration == 0:
        on_step(model, opt, 0)
    t0 = time.perf_counter()
    model.train()
    remaining = (config.epochs - start_epoch) * steps_per_epoch
    prediction = None
    show = progress if world.main else False
    with ledger or contextlib.nullcontext(), progress_bar(remaining, description, show) as advance:
        for epoch in range(start_epoch, config.epochs):
            *sums, iteration = _train_epoch(
                model, opt, sched, x, y, config, epoch, iteration, (loss_fn, on_step, advance), world
            )
            (sum_loss, correct), test = _epoch_end(model, test_set, loss_fn, config, sums, world, cpu)
            model.train()
            elapsed = result.seconds + time.perf_counter() - t0
            result.history.append(_history_row(epoch, iteration, sum_loss, correct, n, test, elapsed))
            if ckpt_path is not None:
                _save_checkpoint(ckpt_path, epoch + 1, iteration, model, opt, sched, result, elapsed)
                if ledger is not None:
                    ledger.update()
            if ledger is not None and epoch == start_epoch:
                prediction = _predict(ledger, config.epochs - start_epoch, advance)
    result.seconds += time.perf_counter() - t0
    result.tracking = _tracking(ledger, prediction, cpu)
    if run_dir is not None:
        _write_record(run_dir, model, dataset, config, result)
    result.iterations = iteration
    return result


def check_run(model: str, data: str, config: TrainConfig, out: str | Path, nproc: int = 1) -> None:
    """Everything `train_run` would refuse (in `nproc` processes), checked without writing anything."""
    from frugalml import data as datasets
    from frugalml import models
    from frugalml.files import check_run_config

    config.validate()
    if nproc > 1:
        distributed.backend_for(config.device)
    if Path(out).is_file():
        raise FrugalError(f"--out {out} is a file, not a directory")
    ds = datasets.get(data)
    distributed.check_nproc(nproc, config.batch_size, len(ds.y_train))
    net = models.for_data(model, ds)
    if (Path(out) / "config.json").is_file():  # compared only: nothing is written
        check_run_config(out, _run_settings(net, ds, config), what="training run")


def train_run(model: str, data: str, config: dict, out: str, progress: bool | None = None) -> TrainResult:
    """`frugal train`: registry model `model` sized for data set `data`, its weights seeded by the
    config's seed, trained (tracked) in run directory `out`, where rank 0 writes the result as
    `train.json`; also the job of each `--nproc` process."""
    from frugalml import data as datasets
    from frugalml import models
    from frugalml.files import write_json

    cfg = TrainConfig(**config)
    ds = datasets.get(data)
    torch.manual_seed(cfg.seed)
    net = models.for_data(model, ds)
    res = fit(net, ds, cfg, out, track=True, progress=progress, description=f"train {model}")
    if distributed.is_main():
        write_json(Path(out) / TRAIN_RESULT, res.to_dict())
    return res


def _to_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Save a state dict with safetensors (atomically); shared tensors are cloned."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    return atomic_save(path, lambda f: f.write(save(tensors)))


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> nn.Module:
    """Load safetensors weights into `model`, with a clear error on a shape mismatch."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FrugalError(f"weights file not found: {path}")
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise FrugalError(f"cannot read weights {path}: {e}") from None
    own = model.state_dict()
    bad = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if bad:
        k = bad[0]
        raise FrugalError(f"{path}: tensor '{k}' has shape {list(state[k].shape)}, model expects {list(own[k].shape)}")
    missing = set(own) - set(state)
    if strict and missing:
        raise FrugalError(f"{path}: missing tensors for {sorted(missing)[:3]} (and {max(len(missing) - 3, 0)} more)")
    model.load_state_dict(state, strict=strict)
    return model
