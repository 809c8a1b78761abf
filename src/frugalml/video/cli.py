"""`frugal video`: train an adaptive (AR-Net style) video recogniser and evaluate it."""

from __future__ import annotations

from pathlib import Path

import typer

from frugalml.errors import FrugalError

app = typer.Typer(no_args_is_help=True, help="Adaptive video recognition (AR-Net).")

JSON = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")


@app.command()
def train(
    data: str = typer.Option("synthetic", help="synthetic, synthetic-nocue (control) or a folder CLASS/clip.mp4."),
    frames: int = typer.Option(16, help="Frames per clip."),
    size: int = typer.Option(64, help="Frame size in px (frames are resized to size x size)."),
    epochs: int = typer.Option(None, help="Epochs for every stage (overrides the per-stage defaults)."),
    epochs_backbone: int = typer.Option(6, help="Stage 1: epochs per backbone."),
    epochs_policy: int = typer.Option(12, help="Stage 2: policy epochs."),
    epochs_finetune: int = typer.Option(3, help="Stage 3: fine-tuning epochs."),
    efficiency_weight: float = typer.Option(0.05, help="w in (1-w) CE + w FLOPs per video (unit: one full-res frame)."),
    clips: int = typer.Option(1000, help="Synthetic training clips."),
    test_clips: int = typer.Option(500, help="Synthetic test clips."),
    joint: bool = typer.Option(False, help="Stage 2 also trains the backbones (every backbone on every frame)."),
    backbone_widths: str = typer.Option("32,64,128", help="Channels of each backbone's three convs, comma-separated."),
    seed: int = typer.Option(0, help="Seed for data, initialisation and data order."),
    threads: int = typer.Option(None, help="Torch threads (default: torch's)."),
    out: Path = typer.Option(None, help="Run directory (default runs/video/<data>-w<weight>-s<seed>)."),
    json_out: bool = JSON,
):
    """Three AR-Net stages: backbones, policy with efficiency loss, fine-tuning. Resumes if killed."""
    import torch

    from frugalml.video.train import VideoConfig
    from frugalml.video.train import train as run_train

    if threads:
        torch.set_num_threads(threads)
    try:
        widths = [int(v) for v in backbone_widths.split(",")]
    except ValueError:
        raise FrugalError(f"--backbone-widths must be comma-separated integers, got {backbone_widths!r}") from None
    e = (epochs, epochs, epochs) if epochs is not None else (epochs_backbone, epochs_policy, epochs_finetune)
    cfg = VideoConfig(
        data=data,
        frames=frames,
        size=size,
        n_train=clips,
        n_test=test_clips,
        epochs_backbone=e[0],
        epochs_policy=e[1],
        epochs_finetune=e[2],
        efficiency_weight=efficiency_weight,
        joint=joint,
        backbone_widths=widths,
        seed=seed,
    )
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
    from frugalml.files import write_json
    from frugalml.video.evaluate import evaluate_run

    if latency_videos < 1:
        raise FrugalError(f"--latency-videos must be >= 1, got {latency_videos}")
    res = evaluate_run(run, latency_videos=latency_videos)
    write_json(Path(run) / "eval.json", res)
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
