"""Linear mode connectivity (Frankle et al. 2020): is a ticket stable to SGD noise?

Two copies start from the same rewind point (mask + rewind weights) and train with
different data orders. Their error is evaluated along the straight line between the two
trained weight vectors; the barrier is the largest error on the path minus the mean of
the two endpoint errors. Under 2% the ticket counts as stable. Networks with BatchNorm
would need their running statistics recomputed at each point; the MLP and Conv-n nets do
not have any.
"""

from __future__ import annotations

from pathlib import Path

import torch

from frugalml.errors import FrugalError
from frugalml.files import CONFIG, read_json, write_json
from frugalml.report.plots import save_figure
from frugalml.tickets import tasks
from frugalml.tickets.imp import MASK, REWIND, TicketConfig, build_model, level_dir, train_masked
from frugalml.tickets.masks import Mask

STABLE_BELOW = 0.02


@torch.no_grad()
def interpolate_curve(model_a, model_b, x, y, points: int = 11) -> list[dict]:
    """Error of (1 - a) * A + a * B at `points` evenly spaced values of a in [0, 1]."""
    from frugalml.train import evaluate

    if points < 3:
        raise FrugalError(f"need at least 3 interpolation points, got {points}")
    sa = {k: v.clone() for k, v in model_a.state_dict().items()}
    sb = model_b.state_dict()
    probe = model_a  # reuse A's module structure; its weights are restored at the end
    curve = []
    for i in range(points):
        a = i / (points - 1)
        mixed = {k: (1 - a) * v + a * sb[k] if v.is_floating_point() else v for k, v in sa.items()}
        probe.load_state_dict(mixed)
        curve.append({"alpha": a, "error": 1.0 - evaluate(probe, x, y)["accuracy"]})
    model_a.load_state_dict(sa)
    return curve


def barrier(curve: list[dict]) -> float:
    ends = 0.5 * (curve[0]["error"] + curve[-1]["error"])
    return max(p["error"] for p in curve) - ends


def stability(
    run: str | Path, level: int, seeds: list[int] | None = None, points: int = 11, progress: bool | None = None
) -> dict:
    """Train two copies of each seed's level-`level` ticket; report the error barrier between them."""
    from frugalml.cost.tracker import Ledger

    run = Path(run)
    if not (run / CONFIG).is_file():
        raise FrugalError(f"{run} is not a ticket run directory (no {CONFIG} from `frugal tickets find`)")
    cfg = TicketConfig.from_dict(read_json(run / CONFIG), str(run / CONFIG)).validate()
    if not 0 <= level <= cfg.levels:
        raise FrugalError(f"level {level} is not in this run (levels 0..{cfg.levels})")
    seeds = cfg.seed_list() if seeds is None else seeds
    for seed in seeds:
        d = level_dir(run, level, seed)
        if not (d / MASK).is_file() or not (d / REWIND).is_file():
            raise FrugalError(f"level {level} seed {seed} has no ticket yet in {run}: run `frugal tickets find` first")
    where = run / f"level_{level}"
    with Ledger(where, children=True, label="tickets.stability") as ledger:
        result = _stability(run, cfg, level, seeds, points, progress)
        write_json(where / "stability.json", result)
        result["plot"] = str(plot_stability(result, where / "stability.png"))
    write_stability_record(where, result, cfg, ledger.total())
    return result


def _stability(run: Path, cfg: TicketConfig, level: int, seeds: list[int], points: int, progress) -> dict:
    from frugalml.train import load_weights

    ds = tasks.load(cfg.data)
    per_seed = []
    for seed in seeds:
        d = level_dir(run, level, seed)
        copies = []
        data_seeds = [10_000 + 2 * seed, 10_001 + 2 * seed]
        for c, data_seed in enumerate(data_seeds):
            model = build_model(cfg.model, ds.input_shape, ds.num_classes, init_seed=seed)
            mask = Mask.load(d / MASK, model)
            load_weights(model, d / REWIND)
            train_masked(
                model,
                ds,
                cfg,
                data_seed,
                mask,
                d / "stability" / f"copy_{c}",
                progress,
                f"stability level {level} seed {seed} copy {c}",
            )
            copies.append(model)
        test = interpolate_curve(copies[0], copies[1], ds.x_test, ds.y_test, points)
        train = interpolate_curve(copies[0], copies[1], ds.x_train, ds.y_train, points)
        b = barrier(test)
        per_seed.append(
            {
                "seed": seed,
                "data_seeds": data_seeds,
                "test_curve": test,
                "train_curve": train,
                "barrier": b,
                "train_barrier": barrier(train),
                "stable": b < STABLE_BELOW,
            }
        )
    mean_barrier = sum(p["barrier"] for p in per_seed) / len(per_seed)
    result = {
        "run_dir": str(run),
        "level": level,
        "remaining": Mask.load(level_dir(run, level, seeds[0]) / MASK).remaining(),
        "rewind": cfg.rewind,
        "points": points,
        "barrier": mean_barrier,
        "stable": mean_barrier < STABLE_BELOW,
        "stable_below": STABLE_BELOW,
        "seeds": per_seed,
        "definition": "max test error on the path minus mean of endpoint errors (Frankle et al. 2020)",
    }
    return result


def write_stability_record(where: Path, result: dict, cfg: TicketConfig, spent: dict) -> Path:
    """`level_L/record.json`: the error barrier per seed (lower is better), train barrier beside it."""
    from frugalml.report import record

    seeds = [s["seed"] for s in result["seeds"]]
    rec = record.build(
        "tickets.stability",
        quality={
            "error_barrier": record.metric([s["barrier"] for s in result["seeds"]], seeds, higher_is_better=False),
            "train_error_barrier": record.metric(
                [s["train_barrier"] for s in result["seeds"]], seeds, higher_is_better=False
            ),
        },
        config=cfg.to_dict() | {"level": result["level"], "points": result["points"]},
        data=cfg.data,
        model=cfg.model,
        spent=spent,
        artifacts={"stability": "stability.json", "plot": "stability.png", "spent": "spent.json"},
    )
    return record.write(where, rec)


def plot_stability(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for s in result["seeds"]:
        c = s["test_curve"]
        ax.plot(
            [p["alpha"] for p in c],
            [100 * p["error"] for p in c],
            "o-",
            markersize=3,
            label=f"seed {s['seed']} (barrier {100 * s['barrier']:.2f}%)",
        )
    ax.set_xlabel("interpolation a: (1 - a) copy 0 + a copy 1")
    ax.set_ylabel("test error (%)")
    ax.set_title(
        f"level {result['level']} ({100 * result['remaining']:.1f}% remaining), rewind {result['rewind']}: "
        f"{'stable' if result['stable'] else 'unstable'}",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path
