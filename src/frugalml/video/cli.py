"""`frugal video`: train an adaptive (AR-Net style) video recogniser and evaluate it."""

from __future__ import annotations

from pathlib import Path

import typer

from frugalml.errors import FrugalError
from frugalml.report.cliopts import build, config_options
from frugalml.video.config import VideoConfig

app = typer.Typer(no_args_is_help=True, help="Adaptive video recognition (AR-Net).")

JSON = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")


@app.command()
@config_options(
    VideoConfig,
    only=(
        "data",
        "frames",
        "size",
        "backbone.epochs",
        "policy.epochs",
        "finetune.epochs",
        "efficiency_weight",
        "n_train",
        "n_test",
        "joint",
        "backbone_widths",
        "seed",
    ),
    flags={
        "backbone.epochs": "epochs_backbone",
        "policy.epochs": "epochs_policy",
        "finetune.epochs": "epochs_finetune",
        "n_train": "clips",
        "n_test": "test_clips",
    },
    helps={
        "backbone.epochs": "Stage 1: epochs per backbone.",
        "policy.epochs": "Stage 2: policy epochs.",
        "finetune.epochs": "Stage 3: fine-tuning epochs.",
    },
)
def train(
    cfg: VideoConfig,
    epochs: int = typer.Option(None, help="Epochs for every stage (overrides the per-stage defaults)."),
    threads: int = typer.Option(None, help="Torch threads (default: torch's)."),
    out: Path = typer.Option(None, help="Run directory (default runs/video/<data>-w<weight>-s<seed>)."),
    json_out: bool = JSON,
):
    """Three AR-Net stages: backbones, policy with efficiency loss, fine-tuning. Resumes if killed."""
    import torch

    from frugalml.video.training import train as run_train

    if threads is not None and threads < 1:
        raise FrugalError(f"--threads must be >= 1, got {threads}")
    if threads:
        torch.set_num_threads(threads)
    if epochs is not None:
        cfg = build(cfg, {f"{stage}.epochs": epochs for stage in ("backbone", "policy", "finetune")})
    data, efficiency_weight, seed = cfg.data, cfg.efficiency_weight, cfg.seed
    if out is None:
        tag = Path(data).name if data not in ("synthetic", "synthetic-nocue") else data
        out = Path("runs/video") / f"{tag}-w{efficiency_weight:g}-s{seed}"
    con = None
    if not json_out:
        from frugalml.report.console import stdout_console

        con = stdout_console()
    summary = run_train(cfg, out, log=(con.print if con else None))
    if json_out:
        from frugalml.report.console import print_json

        return print_json(summary)
    con.print(f"run directory: {out}  (evaluate with: frugal video eval --run {out})")


@app.command("eval")
def eval_cmd(
    run: Path = typer.Option(..., "--run", help="Run directory written by `frugal video train`."),
    latency_videos: int = typer.Option(40, help="Test clips timed per method (interleaved, one thread)."),
    json_out: bool = JSON,
):
    """Accuracy, GFLOPs and ms per video of the adaptive model and every baseline."""
    from frugalml.video.evaluate import evaluate_and_record

    if latency_videos < 1:
        raise FrugalError(f"--latency-videos must be >= 1, got {latency_videos}")
    res = evaluate_and_record(run, latency_videos=latency_videos)
    if json_out:
        from frugalml.report.console import print_json

        return print_json(res)
    from frugalml.report.console import fmt_num, stdout_console, table

    con = stdout_console()
    rows = [["adaptive", f"{res['accuracy']:.3f}", fmt_num(res["gflops_per_video"]), fmt_num(res["ms_per_video"])]]
    for k, v in res["baselines"].items():
        rows.append([k, f"{v['accuracy']:.3f}", fmt_num(v["gflops_per_video"]), fmt_num(v["ms_per_video"])])
    con.print(
        table(
            f"video eval: {run} ({res['test_clips']} test clips)",
            ["method", "accuracy", "GFLOPs/video", "ms/video"],
            rows,
        )
    )
    usage = ", ".join(f"{k} {v:.2f}" for k, v in res["action_usage"].items())
    con.print(f"action usage: {usage}")
    lat = res["latency"]["adaptive_over_uniform_full_median"]
    con.print(
        f"adaptive/uniform-full: FLOPs {res['gflops_ratio_vs_uniform_full']:.3f}, wall-clock {lat:.3f} "
        "(median of per-clip ratios, 1 thread)"
    )
    if "batched" in res["latency"]:
        b = res["latency"]["batched"]
        ratio = b["adaptive_over_uniform_full_median"]
        con.print(f"  in batches of {b['clips_per_batch']} clips: wall-clock {ratio:.3f}")
    ev = res.get("evidence")
    if ev:
        con.print(
            f"top resolution on informative frames {ev['top_res_rate_informative']:.2f} vs uninformative "
            f"{ev['top_res_rate_uninformative']:.2f}; informative frames skipped "
            f"{ev['skipped_rate_informative']:.2f}"
        )
    for p in res.get("plots", []):
        con.print(f"plot: {p}")
