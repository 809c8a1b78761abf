"""SPVNAS on a CPU: searched point-voxel network vs voxel-only (MinkowskiNet-like) baselines.

    .venv/bin/python benchmarks/bench_pointcloud_spvnas.py           # the benchmark (see settings below)
    .venv/bin/python benchmarks/bench_pointcloud_spvnas.py --tiny    # smoke run, a few minutes

Data: the `pointvoxel` space's ray-cast street scenes (default: 48 training scenes of which 8
are held out for the search, 16 test scenes, 2,048 points per scene, data seed 0).
Every network below is trained from scratch with the same recipe (Adam 0.01, cosine,
class-weighted cross-entropy, 4 scenes per step, EPOCHS epochs), seeds SEEDS, and scored on
the test scenes (mIoU over the 9 classes):

- voxel-only baselines: MinkUNet-like at width 0.5 (the supernet's widths) with 0.4 m and
  0.3 m voxels (the better one is "the" baseline);
- hand-scaled point-voxel family (SPVCNN-like): `PointVoxelSpace.scaling_family()` members;
- searched: a weight-sharing supernet (sandwich rule, `frugalml.nas.supernet`), then
  `frugalml.nas.search.evolve` under a MACs budget of baseline MACs / 3, scoring
  candidates by validation mIoU with inherited weights (BN recalibrated); the winner
  is then trained from scratch like everything else.

MACs are counted (FlopCounterMode over the sparse-conv matmuls) on one fixed scene; latency
is measured here, batch 1, one thread, all models interleaved in rounds (fastest-quarter
mean per call, `frugalml.cost.latency.compare_latency`; a model's figure is its best round, the
speed-up is the median of per-round ratios and counts as lower latency only if every round agrees). Independent
trainings run as parallel processes through `frugalml.executor.run_jobs`. Everything
resumes from runs/bench-pointcloud/.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path("runs/bench-pointcloud")
NAME = "pointcloud_spvnas"


def _space():
    from frugalml.models import space as spaces

    return spaces.get("pointvoxel")


def train_job(name: str, arch: dict, seed: int, epochs: int, root: str, tiny: bool) -> dict:
    """Train one architecture from scratch on the space's training scenes; score on its test scenes."""
    import torch

    from frugalml.pointcloud.model import Arch
    from frugalml.pointcloud.train import pointcloud_training, train_model

    torch.set_num_threads(1)
    sp = _space()
    _train, _val, test = sp.dataset(quick=tiny)
    cfg = pointcloud_training(epochs=epochs, seed=seed)
    meta = train_model(
        Arch.from_dict(arch),
        test,
        cfg,
        Path(root) / "models" / f"{name}-s{seed}",
        data_config=sp.config | {"quick": tiny},
        progress=False,
    )
    r = meta["result"]
    return {
        "name": name,
        "seed": seed,
        "miou": r["miou"],
        "per_class_iou": r["per_class_iou"],
        "accuracy": r["accuracy"],
        "train_seconds": r["seconds"],
    }


def search_job(root: str, epochs: int, budget_macs: int, tiny: bool, evo: dict) -> dict:
    """Supernet training (resumable), then evolution under a MACs budget."""
    import torch

    from frugalml.nas.search import EvolutionConfig, evolve
    from frugalml.nas.supernet import Evaluator, SupernetConfig, load_supernet, supernet_training, train_supernet

    torch.set_num_threads(1)
    run = Path(root) / "supernet"
    train = supernet_training(epochs=epochs, batch_size=4, lr=0.01)
    cfg = SupernetConfig(space="pointvoxel", sampling="sandwich", seed=0, quick=tiny, train=train)
    t0 = time.perf_counter()
    sres = train_supernet(cfg, run, track=False, progress=False)
    super_seconds = time.perf_counter() - t0
    space, net, _meta = load_supernet(run)
    train, val, _test = space.dataset(quick=tiny)
    ev = Evaluator(space, net, train, val)
    t0 = time.perf_counter()
    res = evolve(
        space,
        ev,
        space.macs,
        budget_macs,
        EvolutionConfig(**evo),
        state_path=Path(root) / "evolution.json",
        progress=False,
    )
    largest, smallest = space.largest(), space.smallest()
    return {
        "supernet": {
            "epochs": epochs,
            "seconds": sres["seconds"],
            "wall_seconds_this_run": super_seconds,
            "params": sres["params"],
            "sampling": "sandwich",
        },
        "search": {
            "arch": res["arch"],
            "val_miou_inherited": res["accuracy"],
            "macs": space.macs(res["arch"]),
            "budget_macs": budget_macs,
            "generations": res["generations"],
            "evaluations": ev.evaluations,
            "search_seconds": time.perf_counter() - t0,
            "history": res["history"],
            "config": evo,
            "largest_val_miou_inherited": ev(largest),
            "smallest_val_miou_inherited": ev(smallest),
        },
    }


def measure_all(archs: dict[str, dict], rounds: int) -> dict[str, dict]:
    """MACs, params and interleaved latency (ms) of each architecture on the space's example scene."""
    import torch

    from frugalml.cost.latency import compare_latency
    from frugalml.pointcloud.model import Arch, PVNet
    from frugalml.pointcloud.train import count_macs

    torch.set_num_threads(1)
    sp = _space()
    x = sp.example_input()
    nets = {n: PVNet(Arch.from_dict(a)).eval() for n, a in archs.items()}
    lat = compare_latency(nets, x, rounds, order="fixed", threads=1, min_run_time=0.3, stat="fastest_quarter")
    times = {n: [m.estimate_s * 1e3 for m in ms] for n, ms in lat.items()}
    return {
        n: {
            "macs": count_macs(net, x),
            "params": sum(p.numel() for p in net.parameters()),
            "latency_ms": min(times[n]),
            "latency_rounds_ms": times[n],
        }
        for n, net in nets.items()
    }


def summarise(rows: list[dict]) -> dict:
    m = [r["miou"] for r in rows]
    per = list(zip(*[r["per_class_iou"] for r in rows]))
    return {
        "miou_mean": statistics.mean(m),
        "miou_std": statistics.stdev(m) if len(m) > 1 else 0.0,
        "miou_seeds": m,
        "seeds": [r["seed"] for r in rows],
        "per_class_iou_mean": [
            statistics.mean([v for v in c if v is not None]) if any(v is not None for v in c) else None for c in per
        ],
        "train_seconds_mean": statistics.mean(r["train_seconds"] for r in rows),
    }


def plots(p: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from frugalml.report.bench import RESULTS

    style = {"voxel-only": ("s", "grey"), "point-voxel (hand-scaled)": ("o", "tab:blue"), "searched": ("*", "red")}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    axis_labels = {"macs": "MMACs per scene (counted)", "latency_ms": "latency ms per scene (measured, 1 thread)"}
    for ax, (key, label) in zip(axes, axis_labels.items()):
        for name, m in p["models"].items():
            mark, color = style[m["kind"]]
            x = m[key] / 1e6 if key == "macs" else m[key]
            ax.errorbar(
                x,
                100 * m["miou_mean"],
                yerr=100 * m["miou_std"],
                fmt=mark,
                color=color,
                ms=9 if mark == "*" else 6,
                capsize=3,
                label=m["kind"],
            )
            ax.annotate(name, (x, 100 * m["miou_mean"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set(xlabel=label, ylabel="test mIoU (%)")
        h, lab = ax.get_legend_handles_labels()
        uniq = dict(zip(lab, h))
        ax.legend(uniq.values(), uniq.keys(), fontsize=8)
    fig.suptitle(f"ray-cast LiDAR scenes: mIoU (mean ± sd over seeds {p['settings']['seeds']}) vs cost")
    fig.tight_layout()
    path = RESULTS / f"{NAME}_miou_cost.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [str(path)]


def render(root: Path, tiny: bool) -> str:
    import torch

    from frugalml.pointcloud.render import render_top_view
    from frugalml.pointcloud.train import load_model
    from frugalml.report.bench import RESULTS

    sp = _space()
    _t, _v, test = sp.dataset(quick=tiny)
    panels, pts = {}, test.x_test[0]
    for label, d in (("searched", "searched-s0"), ("voxel-only baseline", "baseline")):
        net, meta = load_model(root / "models" / d)
        with torch.no_grad():
            panels[f"{label}: predicted"] = net(pts[None])[0].argmax(-1).numpy()
    panels["ground truth"] = test.y_test[0].numpy()
    path = RESULTS / f"{NAME}_topview.png"
    render_top_view(pts.numpy(), panels, meta["classes"], path, title="test scene 0, top view", extent=40)
    return str(path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="smoke run on the quick data set")
    ap.add_argument("--workers", type=int, default=3)
    args = ap.parse_args(argv)
    from frugalml.executor import run_jobs
    from frugalml.pointcloud.model import minkunet
    from frugalml.pointcloud.space import arch_from_genes
    from frugalml.pointcloud.train import count_macs
    from frugalml.report.bench import save_result

    t_start = time.perf_counter()
    tiny = args.tiny
    root = ROOT / ("tiny" if tiny else "full")
    seeds = [0, 1]
    epochs, super_epochs = (1, 1) if tiny else (8, 10)
    evo = (
        dict(population=6, parents=2, mutations=2, crossovers=2, iterations=2, seed=0)
        if tiny
        else dict(population=16, parents=4, mutations=6, crossovers=6, iterations=4, seed=0)
    )
    sp = _space()
    baselines = {"minkunet-v0.4": minkunet(0.5, 0.4).to_dict(), "minkunet-v0.3": minkunet(0.5, 0.3).to_dict()}
    family = dict(sp.scaling_family())
    pick = ["w1.0-v0.3", "w1.0-v0.5", "w0.5-v0.4"]
    family = {f"spvcnn-{k}": arch_from_genes(family[k]).to_dict() for k in pick}
    # the budget: a third of the cheaper voxel-only baseline's counted MACs on the example scene
    from frugalml.pointcloud.model import Arch, PVNet

    base_macs = min(count_macs(PVNet(Arch.from_dict(a)), sp.example_input()) for a in baselines.values())
    budget = base_macs // 3

    jobs = [
        {"fn": "search", "root": str(root), "epochs": super_epochs, "budget_macs": budget, "tiny": tiny, "evo": evo}
    ]
    for name, a in {**baselines, **family}.items():
        jobs += [
            {"fn": "train", "name": name, "arch": a, "seed": s, "epochs": epochs, "root": str(root), "tiny": tiny}
            for s in seeds
        ]
    print(f"phase 1: supernet + search (budget {budget / 1e6:.1f} MMACs) beside {len(jobs) - 1} trainings", flush=True)
    out1 = run_jobs(dispatch, jobs, workers=args.workers)
    found = out1[0]
    searched = arch_from_genes(found["search"]["arch"]).to_dict()
    print(f"searched: {found['search']['arch']} ({found['search']['macs'] / 1e6:.1f} MMACs)", flush=True)
    jobs2 = [
        {
            "fn": "train",
            "name": "searched",
            "arch": searched,
            "seed": s,
            "epochs": epochs,
            "root": str(root),
            "tiny": tiny,
        }
        for s in seeds
    ]
    out2 = run_jobs(dispatch, jobs2, workers=min(args.workers, 2))
    rows = out1[1:] + out2
    archs = {**baselines, **family, "searched": searched}
    kinds = {n: "voxel-only" for n in baselines} | {n: "point-voxel (hand-scaled)" for n in family}
    kinds["searched"] = "searched"
    cost = measure_all(archs, rounds=2 if tiny else 7)
    models = {}
    for n, a in archs.items():
        models[n] = {"kind": kinds[n], "arch": a} | summarise([r for r in rows if r["name"] == n]) | cost[n]
    # "the" baseline: the voxel-only model with the higher mean test mIoU
    base_name = max(baselines, key=lambda n: models[n]["miou_mean"])
    b, s = models[base_name], models["searched"]
    link = root / "models" / "baseline"
    if not link.exists():
        link.symlink_to(f"{base_name}-s0")
    # latency: per-round ratios (rounds interleave all models), so load that drifts between rounds cancels
    ratios = [bt / st for bt, st in zip(b["latency_rounds_ms"], s["latency_rounds_ms"])]
    verdict = {
        "baseline": base_name,
        "miou_gap_points": 100 * (s["miou_mean"] - b["miou_mean"]),
        "macs_reduction": b["macs"] / s["macs"],
        "latency_speedup_per_round": ratios,
        "latency_speedup": statistics.median(ratios),
        "within_1_point_or_better": s["miou_mean"] >= b["miou_mean"] - 0.01,
        "at_least_3x_fewer_macs": b["macs"] >= 3 * s["macs"],
        "lower_latency": statistics.median(ratios) > 1 and min(ratios) > 1,
    }
    verdict["met"] = (
        verdict["within_1_point_or_better"] and verdict["at_least_3x_fewer_macs"] and verdict["lower_latency"]
    )
    payload = {
        "settings": {
            "tiny": tiny,
            "seeds": seeds,
            "epochs": epochs,
            "supernet_epochs": super_epochs,
            "space_config": sp.config,
            "evolution": evo,
            "budget_macs": budget,
            "workers": args.workers,
            "classes": [
                "road",
                "sidewalk",
                "building",
                "pole",
                "traffic-sign",
                "person",
                "cyclist",
                "car",
                "vegetation",
            ],
        },
        "models": models,
        "supernet": found["supernet"],
        "search": found["search"],
        "verdict": verdict,
        "wall_seconds": time.perf_counter() - t_start,
        "note": "machine shared with other jobs (load average well above the 2 cores): times are inflated; "
        "latencies are interleaved in rounds so their ratios are comparable.",
    }
    payload["plots"] = plots(payload) + [render(root, tiny)]
    path = save_result(NAME + ("_tiny" if tiny else ""), payload)
    print(f"{'model':<20} {'kind':<26} {'mIoU %':>14} {'MMACs':>8} {'ms':>7}")
    for n, m in models.items():
        print(
            f"{n:<20} {m['kind']:<26} {100 * m['miou_mean']:7.1f} ±{100 * m['miou_std']:4.1f} "
            f"{m['macs'] / 1e6:8.1f} {m['latency_ms']:7.1f}"
        )
    v = verdict
    print(
        f"searched vs {base_name}: {v['miou_gap_points']:+.1f} mIoU points, {v['macs_reduction']:.2f}x fewer MACs, "
        f"{v['latency_speedup']:.2f}x latency ratio (median of rounds) -> acceptance met: {v['met']}"
    )
    print(f"wall {payload['wall_seconds'] / 60:.1f} min; saved {path}")


def dispatch(fn: str, **kw):
    return search_job(**kw) if fn == "search" else train_job(**kw)


if __name__ == "__main__":
    sys.exit(main())
