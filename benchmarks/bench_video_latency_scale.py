"""How the per-clip wall-clock saving of the adaptive path depends on backbone size.

Timing only: the trained policy of a benchmark run (bench_video_arnet.py) chooses the
actions; the backbones are then swapped for wider copies of the same design with random
weights (values do not change the time a dense conv takes). Per width, adaptive (policy +
chosen backbones on chosen frames) and uniform full resolution run interleaved on the
same clips, one thread, batch of one clip.

    .venv/bin/python benchmarks/bench_video_latency_scale.py [--run runs/bench_video/synthetic-s0-w0.05]
"""

from __future__ import annotations

import argparse
import copy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="runs/bench_video/synthetic-s0-w0.05")
    ap.add_argument("--clips", type=int, default=48)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from frugalml.report.bench import save_result
    from frugalml.video.infer import adaptive_logits, flops_table, interleaved_ms, uniform_logits, video_flops
    from frugalml.video.model import Backbone
    from frugalml.video.training import load_run

    cfg, model, _, ds = load_run(args.run)
    x = ds.x_test[: args.clips]
    rows = []
    trained = tuple(model.cfg.backbone_widths)
    for widths in sorted({(16, 32, 64), trained, (64, 128, 256)}):
        net = copy.deepcopy(model)
        if widths != trained:
            torch.manual_seed(0)
            net.backbones = torch.nn.ModuleList(
                Backbone(net.cfg.in_channels, net.cfg.num_classes, widths) for _ in net.cfg.resolutions
            ).eval()
        table = flops_table(net, cfg.frames)
        with torch.no_grad():
            _, actions = adaptive_logits(net, x)
        fns = {
            "adaptive": lambda sl, n=net: adaptive_logits(n, x[sl]),
            "uniform_full": lambda sl, n=net: uniform_logits(n, x[sl], 0),
        }
        t = interleaved_ms(fns, [slice(i, i + 1) for i in range(len(x))])
        per = t["per_video_ms"]
        ratio = torch.tensor([a / u for a, u in zip(per["adaptive"], per["uniform_full"])]).median()
        row = {
            "backbone_widths": widths,
            "weights": "trained" if widths == trained else "random (timing only)",
            "gflops_ratio": float(video_flops(table, actions).mean() / table.uniform[0]),
            "ms_adaptive": t["summary"]["adaptive"]["median_ms"],
            "ms_uniform_full": t["summary"]["uniform_full"]["median_ms"],
            "wallclock_ratio_median": float(ratio),
        }
        rows.append(row)
        print(
            f"widths {widths}: FLOPs x{row['gflops_ratio']:.3f}, ms {row['ms_adaptive']:.2f} vs "
            f"{row['ms_uniform_full']:.2f} -> wall-clock x{row['wallclock_ratio_median']:.3f}"
        )
    path = save_result(
        "video_latency_scale",
        {
            "run": args.run,
            "clips": len(x),
            "rows": rows,
            "note": "same learned actions for every width; wider backbones have random weights (timing only); "
            "interleaved timing, 1 thread, batch of one clip",
        },
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
