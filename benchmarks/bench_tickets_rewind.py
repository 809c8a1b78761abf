"""Does rewinding help? IMP to high sparsity with rewind 0 vs an early iteration.

Frankle et al. 2019 ("Stabilizing the LTH") and 2020 ("Linear mode connectivity and the
LTH") find that on deeper nets trained at a high learning rate without warmup, IMP with
rewinding to iteration 0 finds subnetworks no better than random pruning, while rewinding
to 0.1-7% of training finds ones that match the dense net, and that this coincides with the
ticket becoming stable to SGD noise (linear mode connectivity).

--net deep (default): Conv-6 for 1-D signals (`conv6_1d`: widths 32-64-128, FC 256-256,
328k parameters, no BatchNorm) on MNIST-1D; SGD lr 0.1, momentum 0.9, no warmup, cosine
schedule; global magnitude pruning; rewind 0 vs an early iteration (see NETS). At the
sparsest level: random-pruning and random-reinit controls for both rewind points; the
stability (error barrier of linear interpolation) of both tickets for seed 0 at
`stability_level`.

--net conv2: the earlier, smaller setting (Conv-2 on 8x8 digits, 4 levels of 60%, rewind 0
vs 5 iterations), kept reproducible.

    .venv/bin/python benchmarks/bench_tickets_rewind.py [--net deep|conv2] [--quick] [--workers 2 | --executor ray:auto]
    .venv/bin/python benchmarks/bench_tickets_rewind.py --first-seed 2 --lean   # seeds 2, 3; IMP only

The deep setting was chosen after a one-seed pilot (rewind 0 vs 30it, 5 levels of 50%):
there rewind 0 fell to chance at 3.1% remaining while rewind 30it reached 51.6%.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from frugalml.executor import run_jobs
from frugalml.files import read_json
from frugalml.report.bench import RESULTS, save_result
from frugalml.report.plots import save_figure
from frugalml.tickets.imp import TicketConfig, find, run_control, summarize
from frugalml.tickets.instability import stability
from frugalml.train import TrainConfig

NETS = {
    "deep": {
        "name": "tickets_rewind_deep",
        "title": "conv6_1d on MNIST-1D",
        "model": "conv6_1d",
        "data": "mnist1d",
        "levels": 5,
        "rate": 0.5,
        "epochs": 15,
        "rewind": "30it",
        "controls": ["random", "reinit"],
        # at 3% remaining a ticket that never leaves chance has a barrier near 0 ("stable" by
        # vacuity): stability is measured at 12.5%, where both rewind points train
        "stability_level": 3,
        "quick": {"levels": 1, "epochs": 1, "rewind": "5it", "stability_level": 1},
    },
    "conv2": {
        "name": "tickets_rewind_conv2",
        "title": "Conv-2 on digits",
        "model": "conv2",
        "data": "digits",
        "levels": 4,
        "rate": 0.6,
        "epochs": 8,
        "rewind": "5it",
        "controls": [],
        "stability_level": 4,
        "quick": {"levels": 1, "epochs": 1, "stability_level": 1},
    },
}


def plot(results: dict, setting: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (rewind, res) in enumerate(results.items()):
        lv = res["levels"]
        x = [100 * v["remaining"] for v in lv]
        ax.errorbar(
            x,
            [100 * v["accuracy"]["mean"] for v in lv],
            yerr=[100 * v["accuracy"]["std"] for v in lv],
            fmt="o-",
            color=f"C{i}",
            capsize=3,
            label=f"IMP, rewind {rewind}",
        )
        for kind, marker in (("random_accuracy", "^"), ("reinit_accuracy", "s")):
            last = lv[-1].get(kind)
            if last:
                what = "random pruning" if kind == "random_accuracy" else "random reinit"
                ax.errorbar(
                    [x[-1] * (0.93 if i else 1.07)],
                    [100 * last["mean"]],
                    yerr=[100 * last["std"]],
                    fmt=marker,
                    color=f"C{i}",
                    mfc="none",
                    capsize=3,
                    label=f"{what} (rewind {rewind} weights)" if kind == "random_accuracy" else f"{what}",
                )
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("weights remaining (%)")
    ax.set_ylabel("test accuracy (%)")
    seeds = len(next(iter(results.values()))["seeds"])
    ax.set_title(f"{setting['title']}, global IMP, {seeds} seeds", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def _stability(run: str, level: int, seed: int, threads: int | None = None) -> dict:
    if threads:
        import torch

        torch.set_num_threads(threads)
    st = stability(run, level, seeds=[seed], progress=False)
    return {k: st[k] for k in ("level", "remaining", "rewind", "barrier", "stable", "stable_below")} | {
        "train_barrier": st["seeds"][0]["train_barrier"],
        "test_curve": [round(p["error"], 4) for p in st["seeds"][0]["test_curve"]],
    }


def _control(**job) -> dict:
    return run_control(**job)


def run(
    setting: dict, quick: bool, workers: int, runs: Path, first_seed: int = 0, executor: str | None = None
) -> tuple[dict, dict]:
    """IMP for both rewind points (seeds in parallel), then the sparsest level's controls and stability."""
    s = setting | (setting["quick"] if quick else {})
    results, outs, cfgs = {}, {}, {}
    for rewind in ("0", s["rewind"]):
        cfg = TicketConfig(
            model=s["model"],
            data=s["data"],
            levels=s["levels"],
            rate=s["rate"],
            strategy="global",
            rewind=rewind,
            seeds=2,
            first_seed=first_seed,
            controls=[],
            train=TrainConfig(
                epochs=s["epochs"], batch_size=64, lr=0.1, optimizer="sgd", momentum=0.9, schedule="cosine"
            ),
        )
        tail = ("_quick" if quick else "") + (f"_s{first_seed}" if first_seed else "")
        outs[rewind] = runs / f"rewind_{s['model']}_{s['data']}_{rewind}{tail}"
        cfgs[rewind] = cfg
        find(cfg, outs[rewind], workers=workers, progress=False, executor=executor)
    last = s["levels"]
    threads = 1 if workers > 1 else None
    jobs = [
        {
            "out": str(outs[r]),
            "config": cfgs[r].to_dict(),
            "seed": seed,
            "level": last,
            "kind": kind,
            "threads": threads,
        }
        for r in outs
        for kind in s["controls"]
        for seed in cfgs[r].seed_list()
    ]
    run_jobs(_control, jobs, executor or workers)
    level = s["stability_level"]
    job = {"level": level, "seed": first_seed, "threads": threads}
    todo = [job | {"run": str(outs[r])} for r in outs] if level is not None else []
    stab = run_jobs(_stability, todo, executor or workers) or [None] * len(outs)
    for r, st in zip(outs, stab):
        results[r] = summarize(outs[r])
        results[r]["stability"] = st
    return results, s


def table(results: dict, rewind: str) -> list[dict]:
    rows = []
    print(f" remaining   rewind 0        rewind {rewind:6s}  difference")
    for a, b in zip(results["0"]["levels"], results[rewind]["levels"]):
        d = b["accuracy"]["mean"] - a["accuracy"]["mean"]
        rows.append(
            {
                "level": a["level"],
                "remaining": a["remaining"],
                "rewind_0": a["accuracy"],
                f"rewind_{rewind}": b["accuracy"],
                f"rewind_{rewind}_minus_rewind_0": d,
            }
        )
        print(
            f" {100 * a['remaining']:8.2f}%  {100 * a['accuracy']['mean']:6.2f} ± {100 * a['accuracy']['std']:4.2f}"
            f"   {100 * b['accuracy']['mean']:6.2f} ± {100 * b['accuracy']['std']:4.2f}   {100 * d:+6.2f}"
        )
    return rows


def sparsest(results: dict, rewind: str) -> dict:
    """The sparsest level: each rewind point's ticket beside its controls and the dense net."""
    out = {}
    for r, res in results.items():
        lv = res["levels"][-1]
        entry = {"remaining": lv["remaining"], "ticket": lv["accuracy"]}
        for kind in ("random", "reinit"):
            if lv.get(f"{kind}_accuracy"):
                c = lv[f"{kind}_accuracy"]
                entry[f"{kind}_pruning" if kind == "random" else kind] = c
                entry[f"ticket_minus_{kind}"] = lv["accuracy"]["mean"] - c["mean"]
        entry["ticket_minus_dense"] = lv["accuracy"]["mean"] - res["dense_accuracy"]["mean"]
        out[f"rewind_{r}"] = entry
        extra = "".join(
            f", {k.replace('_', ' ')} {100 * entry[k]['mean']:.2f}" for k in ("random_pruning", "reinit") if k in entry
        )
        print(f" sparsest ({100 * lv['remaining']:.2f}%), rewind {r}: ticket {100 * lv['accuracy']['mean']:.2f}{extra}")
    return out


def stabilities(results: dict) -> dict:
    out = {}
    for r, res in results.items():
        st = res["stability"]
        if st is None:
            continue
        out[f"rewind_{r}"] = st
        print(
            f" stability at {100 * st['remaining']:.2f}% remaining, rewind {r}, first seed: barrier"
            f" {100 * st['barrier']:.2f}% (train {100 * st['train_barrier']:.2f}%), "
            f"{'stable' if st['stable'] else 'unstable'}"
        )
    return out


def verdict(rows: list[dict], rewind: str) -> dict:
    """Does the early rewind beat rewind 0 by more than 1 point and twice the seed spread, at the sparsest level?"""
    last = rows[-1]
    spread = max(last["rewind_0"]["std"], last[f"rewind_{rewind}"]["std"])
    diff = last[f"rewind_{rewind}_minus_rewind_0"]
    margin = max(0.01, 2 * spread)
    helps = diff > margin
    if helps:
        text = f"rewinding to {rewind} helps at the sparsest level"
    elif diff < -margin:
        text = f"rewinding to {rewind} is worse than rewinding to 0 at the sparsest level"
    else:
        text = "no clear rewinding effect at this scale (difference within 1 point or 2x the seed spread)"
    return {"text": text, "rewinding_helps": helps, "difference": diff, "margin": margin}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--net", choices=sorted(NETS), default="deep")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--executor", default=None, help="serial, processes[:N], ray, ray:auto, ray://HOST:PORT")
    ap.add_argument("--runs", default="runs/bench_tickets")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds FIRST, FIRST+1 (more seeds for a setting)")
    ap.add_argument("--lean", action="store_true", help="no controls, no stability: IMP of both rewind points only")
    args = ap.parse_args()
    setting = NETS[args.net]
    t0 = time.perf_counter()
    if args.lean:
        setting = setting | {"controls": [], "stability_level": None}
    results, s = run(setting, args.quick, args.workers, Path(args.runs), args.first_seed, args.executor)
    rewind = s["rewind"]
    payload = {
        "what": f"rewind 0 vs rewind {rewind}, {s['title']}, global IMP",
        "seeds": [args.first_seed, args.first_seed + 1],
        "note": "shared 2-core machine, other jobs running; final-epoch test accuracy; "
        "controls at the sparsest level only; stability for seed 0 at the level named in stability",
        "seconds": time.perf_counter() - t0,
        "seconds_note": "this attempt only: an attempt resumed from the run directories counts only what it redid",
        "imp_wall_s_all_attempts": {
            r: read_json(Path(res["run_dir"]) / "spent.json")["total"]["wall_s"] for r, res in results.items()
        },
        "dense_accuracy": results["0"]["dense_accuracy"],
    }
    payload["rewind_iteration_fraction_of_training"] = _fraction(results[rewind]["config"], rewind)
    payload["levels"] = table(results, rewind)
    payload["sparsest"] = sparsest(results, rewind)
    payload["stability_seed0"] = stabilities(results)
    payload["verdict"] = verdict(payload["levels"], rewind)
    print(" verdict:", payload["verdict"]["text"])
    payload["configs"] = {r: results[r]["config"] for r in results}
    name = setting["name"] + ("_quick" if args.quick else "") + (f"_s{args.first_seed}" if args.first_seed else "")
    if not args.quick:
        plot(results, s, RESULTS / f"{name}.png")
    print(f"saved {save_result(name, payload)}")


def _fraction(config: dict, rewind: str) -> dict:
    from frugalml.tickets import tasks

    cfg = TicketConfig.from_dict(config)
    n = len(tasks.load(cfg.data).y_train)
    k = cfg.rewind_iteration(n)
    total = -(-n // cfg.train.batch_size) * cfg.train.epochs
    return {"rewind_iteration": k, "iterations": total, "fraction": k / total}


if __name__ == "__main__":
    main()
