"""AR-Net on the synthetic video task: accuracy, counted GFLOPs and measured ms per video of
the learned policy against uniform processing, a random policy with the same action mix,
and the oracle; the no-cue variant as negative control. >= 2 seeds.

    .venv/bin/python benchmarks/bench_video_arnet.py [--quick] [--workers 2 | --executor ray:auto]

Runs live in runs/bench_video/<variant>-s<seed>-w<weight>/ and resume when killed; the
stage-1 backbones and the uniform baselines of a (variant, seed) are trained once and shared
by every efficiency weight (their run directories are copied). Every uniform baseline gets
the adaptive model's training budget: stage 1 plus as many epochs as stage 3 fine-tunes.
Each job runs on one torch thread.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

RUNS = Path("runs/bench_video")


def job(
    variant: str, seed: int, weights: list[float], settings: dict, latency_videos: int, runs: str = str(RUNS)
) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    from frugalml.cost.tracker import add_segments, read_segments
    from frugalml.files import read_json, write_json
    from frugalml.report.cliopts import build
    from frugalml.video.evaluate import evaluate_run
    from frugalml.video.training import VideoConfig, load_data, train

    # settings address fields by dotted path ("backbone.epochs": a field of an embedded TrainConfig)
    cfg0 = build(VideoConfig(data=variant, seed=seed, efficiency_weight=weights[0]), settings)
    ds = load_data(cfg0)
    first = Path(runs) / f"{variant}-s{seed}-w{weights[0]:g}"
    out = []
    for w in weights:
        cfg = replace(cfg0, efficiency_weight=w)
        run = Path(runs) / f"{variant}-s{seed}-w{w:g}"
        for stage, done in (("stage1", "stage1.safetensors"), ("uniform", "uniform.safetensors")):
            if run != first and not (run / stage).exists() and (first / done).exists():
                shutil.copytree(first / stage, run / stage)  # same backbones: same data, seed, settings
        finished_before = (run / "uniform.safetensors").exists()
        t0 = time.perf_counter()
        summary = train(cfg, run, ds=ds, progress=False)
        train_s = time.perf_counter() - t0
        ev_path = run / "eval.json"
        if ev_path.exists():
            ev = read_json(ev_path)
        else:
            ev = evaluate_run(run, latency_videos=latency_videos, seed=seed)
            write_json(ev_path, ev)
        ev["train_seconds_this_call"] = train_s
        ev["trained_in_earlier_invocation"] = finished_before
        spent = add_segments(read_segments(run))  # every attempt at this run, this invocation's or earlier ones'
        ev["run_spent"] = {k: spent.get(k) for k in ("wall_s", "cpu_s")}
        ev["stages"] = summary["stages"]
        ev.update(variant=variant, seed=seed, efficiency_weight=w)
        base = ev["baselines"]
        print(
            f"[{variant} seed {seed} w {w:g}] acc {ev['accuracy']:.3f} GFLOPs {ev['gflops_per_video']:.4f} "
            f"(x{ev['gflops_ratio_vs_uniform_full']:.2f} of uniform) ms {ev['ms_per_video']:.2f} "
            f"(x{ev['latency']['adaptive_over_uniform_full_median']:.2f}) | uniform-full "
            f"acc {base['uniform_64']['accuracy']:.3f} (stage 1 alone {base['uniform_64'].get('stage1_accuracy')})"
            f" | random {base['random']['accuracy']:.3f}"
            f" | oracle {base['oracle']['accuracy']:.3f}",
            flush=True,
        )
        out.append(ev)
    return out


def frame_accuracy_summary(evs: list[dict]) -> dict:
    """Per-frame accuracy of each backbone on informative frames, by the resolution the frame needs,
    mean over seeds, for the adaptive model's backbones and the uniform baselines'."""
    out: dict = {}
    for e in evs:
        for model, per_res in e["evidence"]["frame_accuracy"].items():
            for res, per_need in per_res.items():
                for need, acc in per_need.items():
                    out.setdefault(model, {}).setdefault(res, {}).setdefault(need, []).append(acc)
    return {
        model: {res: {need: statistics.fmean(v) for need, v in d.items()} for res, d in per.items()}
        for model, per in out.items()
    }


def mean_std(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny settings (a smoke test, not the benchmark)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--executor", default=None, help="serial, processes[:N], ray, ray:auto, ray://HOST:PORT (default: --workers)"
    )
    ap.add_argument("--seeds", default="0,1", help="seeds, a list (0,1,2) or a range (0-2), as `frugal` takes them")
    ap.add_argument("--variants", default="synthetic,synthetic-nocue", help="data variants, comma-separated")
    args = ap.parse_args()
    from frugalml.report.cliopts import parse_seeds

    args.seeds = parse_seeds(args.seeds)

    from frugalml.executor import bench_executor, run_jobs
    from frugalml.report.bench import save_result
    from frugalml.video.plots import plot_flops_vs_informative, plot_tradeoff

    if args.quick:
        settings = {
            "n_train": 64,
            "n_test": 32,
            "frames": 8,
            "backbone.epochs": 1,
            "policy.epochs": 2,
            "finetune.epochs": 1,
        }
        cue_w, nocue_w, lat = [0.05], [0.05], 4
    else:
        settings = {
            # 600 training clips (800 before) and two weights on the cued task, one on the control:
            # the 2 shared cores were several times oversubscribed when this was last run
            "n_train": 600,
            "n_test": 400,
            "frames": 16,
            "backbone.epochs": 5,
            "policy.epochs": 10,
            "finetune.epochs": 2,
            "backbone.batch_size": 16,
            "finetune.batch_size": 16,
        }
        cue_w, nocue_w, lat = [0.05, 0.1], [0.05], 64
    weights = {"synthetic": cue_w, "synthetic-nocue": nocue_w}
    variants = args.variants.split(",")
    jobs = [  # the cued task first: the control is what a short run would leave out
        dict(variant=v, seed=seed, weights=weights[v], settings=settings, latency_videos=lat, runs=str(RUNS))
        for v in variants
        for seed in args.seeds
    ]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    ex = args.executor or bench_executor(args.workers)  # on Ray the run directories travel back into RUNS
    results = [ev for evs in run_jobs(job, jobs, ex, root=RUNS) for ev in evs]
    wall = time.perf_counter() - t0

    rows = {}
    for ev in results:
        rows.setdefault((ev["variant"], ev["efficiency_weight"]), []).append(ev)
    summary = {}
    for (variant, w), evs in sorted(rows.items()):
        key = f"{variant}/w{w:g}"
        s = {"seeds": [e["seed"] for e in evs]}
        for name, get in {
            "accuracy": lambda e: e["accuracy"],
            "gflops_per_video": lambda e: e["gflops_per_video"],
            "ms_per_video": lambda e: e["ms_per_video"],
            "gflops_ratio_vs_uniform_full": lambda e: e["gflops_ratio_vs_uniform_full"],
            "wallclock_ratio_vs_uniform_full": lambda e: e["latency"]["adaptive_over_uniform_full_median"],
            "cpu_time_ratio_vs_uniform_full": lambda e: e["latency"]["adaptive_over_uniform_full_cpu_median"],
            "batched_wallclock_ratio_vs_uniform_full": lambda e: e["latency"]["batched"][
                "adaptive_over_uniform_full_median"
            ],
            "ms_per_video_batched": lambda e: e["ms_per_video_batched"],
            "cpu_ms_per_video": lambda e: e["cpu_ms_per_video"],
            "uniform_full_ms_per_video": lambda e: e["baselines"]["uniform_64"]["ms_per_video"],
            "uniform_full_accuracy": lambda e: e["baselines"]["uniform_64"]["accuracy"],
            "accuracy_minus_uniform_full": lambda e: e["accuracy"] - e["baselines"]["uniform_64"]["accuracy"],
            "uniform_full_stage1_accuracy": lambda e: e["baselines"]["uniform_64"]["stage1_accuracy"],
            "accuracy_minus_uniform_full_stage1": lambda e: (
                e["accuracy"] - e["baselines"]["uniform_64"]["stage1_accuracy"]
            ),
            "wallclock_ratio_q1": lambda e: e["latency"]["adaptive_over_uniform_full_quartiles"][0],
            "wallclock_ratio_q3": lambda e: e["latency"]["adaptive_over_uniform_full_quartiles"][1],
            "random_accuracy": lambda e: e["baselines"]["random"]["accuracy"],
            "random_gflops_per_video": lambda e: e["baselines"]["random"]["gflops_per_video"],
            "learned_minus_random": lambda e: e["accuracy"] - e["baselines"]["random"]["accuracy"],
            "oracle_accuracy": lambda e: e["baselines"]["oracle"]["accuracy"],
            "top_res_rate_informative": lambda e: e["evidence"]["top_res_rate_informative"],
            "top_res_rate_uninformative": lambda e: e["evidence"]["top_res_rate_uninformative"],
            "top_res_ratio": lambda e: e["evidence"]["top_res_ratio"],
            "skipped_rate_informative": lambda e: e["evidence"]["skipped_rate_informative"],
            "skipped_rate_uninformative": lambda e: e["evidence"]["skipped_rate_uninformative"],
        }.items():
            try:
                values = [get(e) for e in evs]
            except KeyError:  # not measured in this run (a --quick run has too few clips to batch)
                s.setdefault("not_measured", []).append(name)
                continue
            m, sd = mean_std(values)
            s[name] = {"mean": m, "std": sd, "per_seed": values}
        summary[key] = s
    baselines = {}
    cued = [e for e in results if e["variant"] == "synthetic"]
    names = [k for k in cued[0]["baselines"] if k.startswith("uniform_")] + ["oracle"] if cued else []
    for name in names:
        baselines[name] = {
            k: mean_std([e["baselines"][name].get(k) for e in cued])[0]
            for k in ("accuracy", "stage1_accuracy", "gflops_per_video", "ms_per_video")
        }
    frame_accuracy = frame_accuracy_summary(cued)

    # acceptance, on the cued task, at each weight
    checks = {}
    for key, s in summary.items():
        if not key.startswith("synthetic/"):
            continue
        w = key.split("/w")[1]
        nocue = summary.get(f"synthetic-nocue/w{w}")
        checks[key] = {
            "accuracy_within_1pt_of_uniform_full": s["accuracy_minus_uniform_full"]["mean"] >= -0.01,
            "gflops_at_most_half": s["gflops_ratio_vs_uniform_full"]["mean"] <= 0.5,
            "wallclock_at_most_0.5x": s["wallclock_ratio_vs_uniform_full"]["mean"] <= 0.5,
            "wallclock_at_most_0.5x_every_seed": max(s["wallclock_ratio_vs_uniform_full"]["per_seed"]) <= 0.5,
            "cpu_time_at_most_0.5x": s["cpu_time_ratio_vs_uniform_full"]["mean"] <= 0.5,
            "batched_wallclock_at_most_0.5x": s["batched_wallclock_ratio_vs_uniform_full"]["mean"] <= 0.5
            if "batched_wallclock_ratio_vs_uniform_full" in s
            else None,
            "learned_minus_random": s["learned_minus_random"]["mean"],
            "nocue_learned_minus_random": nocue["learned_minus_random"]["mean"] if nocue else None,
            "informative_top_res_at_least_2x": s["top_res_ratio"]["mean"] >= 2.0,
        }
    payload = {
        "settings": settings,
        "efficiency_weights": {v: weights[v] for v in variants},
        "seeds": args.seeds,
        "wall_seconds": wall,
        "note": "adaptive and uniform were timed interleaved on the same clips in one process (1 thread), "
        "while the other benchmark job and other users' jobs shared the 2 cores; uniform baselines trained "
        "for stage 1 + finetune.epochs, as long as the adaptive model",
        "load_average_before_after": [load_before, os.getloadavg()],
        # runs resume from their directories: a run trained by an earlier invocation costs this one ~nothing
        "runs_trained_in_earlier_invocations": sum(e["trained_in_earlier_invocation"] for e in results),
        "run_wall_seconds_max": max(e["run_spent"]["wall_s"] or 0 for e in results),
        "summary": summary,
        "baselines_cued_mean": baselines,
        "frame_accuracy_cued_mean": frame_accuracy,
        "acceptance": checks,
        "runs": [
            {k: v for k, v in e.items() if k not in ("flops",)}
            | {"latency": {kk: vv for kk, vv in e["latency"].items() if kk != "per_video_ms"}}
            for e in results
        ],
    }
    name = "video_arnet_quick" if args.quick else "video_arnet"
    path = save_result(name, payload)
    res_dir = path.parent

    curves = {}
    for variant, label in (("synthetic", "learned policy (cue)"), ("synthetic-nocue", "learned policy (no cue)")):
        if variant not in variants:
            continue
        curves[label] = [
            (s["gflops_per_video"]["mean"], s["accuracy"]["mean"], s["accuracy"]["std"])
            for k, s in summary.items()
            if k.startswith(variant + "/")
        ]
        curves[label.replace("learned", "random")] = [
            (s["random_gflops_per_video"]["mean"], s["random_accuracy"]["mean"], s["random_accuracy"]["std"])
            for k, s in summary.items()
            if k.startswith(variant + "/")
        ]
    points = {
        k.replace("_", " ") + " px" if k.startswith("uniform") else k: (v["gflops_per_video"], v["accuracy"])
        for k, v in baselines.items()
    }
    plot_tradeoff(
        res_dir / f"{name}_tradeoff.png",
        curves,
        points,
        f"synthetic video, {len(args.seeds)} seeds, {settings['n_test']} test clips",
    )
    per = {
        f"{e['variant']} s{e['seed']} w{e['efficiency_weight']:g}": e["evidence"]["gflops_vs_informative_frames"]
        for e in results
        if e["efficiency_weight"] == 0.05
    }
    plot_flops_vs_informative(res_dir / f"{name}_flops_vs_informative.png", per)
    for e in results:
        if e["seed"] == args.seeds[0] and e["efficiency_weight"] == 0.05:
            src = Path(e["run_dir"]) / "choices.png"
            if src.exists():
                tag = "cue" if e["variant"] == "synthetic" else "nocue"
                shutil.copyfile(src, res_dir / f"{name}_choices_{tag}.png")
    print(f"saved {path} ({wall:.0f} s)")
    for key, c in checks.items():
        print(key, c)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
