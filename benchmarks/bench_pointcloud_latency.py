"""Paired latency: the searched point-voxel net vs the voxel-only baseline, many interleaved rounds.

    .venv/bin/python benchmarks/bench_pointcloud_latency.py [--rounds 15]

Reads the architectures from benchmarks/results/pointcloud_spvnas.json (run
bench_pointcloud_spvnas.py first). Latency does not depend on the weights, so fresh
networks are timed: batch 1 (one 2,048-point scene), one thread, each round times every
model once (`frugalml.cost.latency.compare_latency`: mean of the fastest quarter of calls
in 0.3 s) in a rotating order; the ratio baseline/searched is taken per round, so load that
changes between rounds cancels. Also times a 10,000-point full scene. Saves
benchmarks/results/pointcloud_latency.json.
"""

from __future__ import annotations

import argparse
import statistics


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    import torch

    from frugalml.cost.latency import compare_latency
    from frugalml.data.pointcloud import make_scene
    from frugalml.files import read_json
    from frugalml.models import space as spaces
    from frugalml.pointcloud.model import Arch, PVNet
    from frugalml.pointcloud.train import count_macs
    from frugalml.report.bench import RESULTS, save_result

    torch.set_num_threads(1)
    bench = read_json(RESULTS / "pointcloud_spvnas.json")
    base_name = bench["verdict"]["baseline"]
    searched = bench["verdict"].get("searched", "searched")  # the acceptance's searched net (older files: "searched")
    names = [base_name, searched] + [n for n in bench["models"] if n not in (base_name, searched)]
    nets = {n: PVNet(Arch.from_dict(bench["models"][n]["arch"])).eval() for n in names}
    scenes = {
        "2048 points": spaces.get("pointvoxel").example_input(),
        "full scene": torch.from_numpy(make_scene(10_000_019).points)[None],
    }
    out = {}
    for label, x in scenes.items():
        lat = compare_latency(nets, x, args.rounds, threads=1, min_run_time=0.3, stat="fastest_quarter")
        times = {n: [m.estimate_s * 1e3 for m in lat[n]] for n in names}
        ratios = [b / s for b, s in zip(times[base_name], times[searched])]
        out[label] = {
            "points": int(x.shape[1]),
            "median_ms": {n: statistics.median(t) for n, t in times.items()},
            "rounds_ms": times,
            "macs": {n: count_macs(nets[n], x) for n in names},
            "macs_reduction_baseline_over_searched": count_macs(nets[base_name], x) / count_macs(nets[searched], x),
            "speedup_baseline_over_searched": {
                "median": statistics.median(ratios),
                "min": min(ratios),
                "max": max(ratios),
                "rounds_searched_faster": sum(r > 1 for r in ratios),
            },
        }
        s = out[label]["speedup_baseline_over_searched"]
        print(
            f"{label} ({x.shape[1]} points): {base_name} {out[label]['median_ms'][base_name]:.1f} ms, searched "
            f"{out[label]['median_ms'][searched]:.1f} ms "
            f"({out[label]['macs_reduction_baseline_over_searched']:.2f}x fewer MACs); "
            f"per-round speedup median {s['median']:.2f}x "
            f"[{s['min']:.2f}, {s['max']:.2f}], searched faster in {s['rounds_searched_faster']}/{args.rounds}"
        )
        for n in names:
            print(f"   {n:<20} {out[label]['median_ms'][n]:7.1f} ms  {out[label]['macs'][n] / 1e6:8.1f} MMACs")
    payload = {
        "baseline": base_name,
        "searched": searched,
        "rounds": args.rounds,
        "threads": 1,
        "results": out,
        "note": "machine shared with other jobs; per-round ratios cancel slow drifts in load",
    }
    print(f"saved {save_result('pointcloud_latency', payload)}")


if __name__ == "__main__":
    main()
