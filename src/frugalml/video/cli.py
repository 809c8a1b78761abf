"""`frugal video`: train an adaptive (AR-Net style) video recogniser and evaluate it."""

from __future__ import annotations

from pathlib import Path

import typer

from frugalml.errors import FrugalError
from frugalml.report.cliopts import build, config_options
from frugalml.report.console import print_saved, warn, warn_if_long
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
    quick={
        "n_train": 96,
        "n_test": 48,
        "frames": 8,
        "backbone_widths": [8, 16, 32],
        "backbone.epochs": 1,
        "policy.epochs": 1,
        "finetune.epochs": 1,
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
    cfg.validate()
    data, efficiency_weight, seed = cfg.data, cfg.efficiency_weight, cfg.seed
    if data in ("synthetic", "synthetic-nocue"):  # a folder's clip count is known only once it is read
        warn_if_long(*train_seconds(cfg))
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

        print_json(summary)
        return print_saved(out, json_out)
    con.print(f"evaluate with: frugal video eval --run {out}")
    print_saved(out)


# one clip through one backbone's share of a stage for one epoch (16 frames, 64 px, default
# widths): `video train --quick --backbone-widths 32,64,128 --frames 16` took 30 s for 96 clips
# x 9 such units, start-up included, nice'd on a shared 2-core machine. Rough on purpose.
CLIP_EPOCH_S = 0.03


def train_seconds(cfg: VideoConfig) -> tuple[float, str, str]:
    """Rough wall time of `video train` (for `warn_if_long`): clip-epochs of the three stages and of
    the uniform baselines' fine-tuning, stage 1, 2 and the baselines counting every backbone, scaled
    by frames and the backbones' widths."""
    epochs = 3 * cfg.backbone.epochs + 3 * cfg.policy.epochs + cfg.finetune.epochs * 3 + 3 * cfg.finetune.epochs
    width = sum(a * b for a, b in zip([1, *cfg.backbone_widths], cfg.backbone_widths)) / (32 + 32 * 64 + 64 * 128)
    seconds = cfg.n_train * epochs * CLIP_EPOCH_S * cfg.frames / 16 * (cfg.size / 64) ** 2 * width
    basis = f"{cfg.n_train} clips x {cfg.backbone.epochs}+{cfg.policy.epochs}+{cfg.finetune.epochs} stage epochs"
    return seconds, "video train", basis


def _spread(lat: dict) -> str:
    q1, q3 = lat["adaptive_over_uniform_full_quartiles"]
    return f"{lat['adaptive_over_uniform_full_median']:.3f} (quartiles {q1:.3f}-{q3:.3f})"


def latency_warnings(latency: dict) -> list[str]:
    """A wall-clock ratio whose spread (quartiles of the per-clip ratios) contains 1."""
    out = []
    for what, lat in (("per clip", latency), ("batched", latency.get("batched"))):
        if (
            lat
            and lat["adaptive_over_uniform_full_quartiles"][0] <= 1 <= lat["adaptive_over_uniform_full_quartiles"][1]
        ):
            out.append(
                f"adaptive/uniform-full wall-clock {what} {_spread(lat)} lies within its spread: no measured gain"
            )
    return out


def collapse_warnings(res: dict) -> list[str]:
    """A degenerate policy: accuracy near chance, or one action taking over 95% of the choices."""
    out = []
    chance = 1 / res["num_classes"]
    margin = max(0.05, 2 * (chance * (1 - chance) / res["test_clips"]) ** 0.5)
    if res["accuracy"] <= chance + margin:
        out.append(f"accuracy {res['accuracy']:.3f} is near chance ({chance:.3f} for {res['num_classes']} classes)")
    choices = {k: v for k, v in res["action_usage"].items() if k != "frames_skipped_over"}
    action, share = max(choices.items(), key=lambda kv: kv[1])
    if share > 0.95:
        out.append(f"collapsed policy: action '{action}' takes {100 * share:.1f}% of the choices")
    return out


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
    res["warnings"] = collapse_warnings(res) + latency_warnings(res["latency"])
    for w in res["warnings"]:
        warn(w)
    if json_out:
        from frugalml.report.console import print_json

        print_json(res)
        return print_saved(run, json_out)
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
    con.print(
        f"adaptive/uniform-full: FLOPs {res['gflops_ratio_vs_uniform_full']:.3f}, wall-clock "
        f"{_spread(res['latency'])} (median of per-clip ratios, 1 thread)"
    )
    if "batched" in res["latency"]:
        b = res["latency"]["batched"]
        con.print(f"  in batches of {b['clips_per_batch']} clips: wall-clock {_spread(b)}")
    ev = res.get("evidence")
    if ev:
        con.print(
            f"top resolution on informative frames {ev['top_res_rate_informative']:.2f} vs uninformative "
            f"{ev['top_res_rate_uninformative']:.2f}; informative frames skipped "
            f"{ev['skipped_rate_informative']:.2f}"
        )
    for p in res.get("plots", []):
        con.print(f"plot: {p}")
    print_saved(run)


@app.command("export")
def export_cmd(
    run: Path = typer.Option(..., "--run", help="Run directory written by `frugal video train`."),
    out: Path = typer.Option(None, help="Export directory to create (default <run>/export_<format>)."),
    format: str = typer.Option(
        "onnx",
        "--format",
        help="onnx (one graph per backbone and for the policy, checked in onnxruntime; needs frugalml[deploy]) "
        "| safetensors (weights + config).",
    ),
    json_out: bool = JSON,
):
    """Export the trained model to deploy; load it back with `frugalml.load(DIR)`."""
    from frugalml.video.export import export

    out = out or Path(run) / f"export_{format}"
    res = export(run, out, fmt=format)
    warnings = export_warnings(res)
    for w in warnings:
        warn(w)
    if json_out:
        from frugalml.report.console import print_json

        print_json(res | {"warnings": warnings})
        return print_saved(out, json_out)
    from frugalml.report.console import stdout_console

    con = stdout_console()
    con.print(f"written: {res['file']} ({res['bytes_safetensors']:,} bytes, {res['params']:,} params)")
    if format == "onnx":
        con.print(_graphs_table(res))
        con.print(
            f"adaptive path on {res['test_clips']} test clips: accuracy {res['accuracy_onnx']:.3f} with every part in "
            f"onnxruntime, {res['accuracy']:.3f} in PyTorch; max |logit difference| "
            f"{res['adaptive_max_abs_diff']:.2e}; same action on {100 * res['actions_agree']:.1f}% of frames"
        )
    print_saved(out)


def export_warnings(res: dict) -> list[str]:
    out = []
    if res.get("frames_to_a_backbone") == 0:
        out.append("the policy sends no test frame to a backbone: the adaptive path's ONNX check compared no logits")
    for name, g in res.get("graphs", {}).items():
        for b, lat in g.get("latency", {}).items():
            r = lat["ratios"]["onnxruntime/export"]
            if r["within_spread"]:
                out.append(
                    f"{name}, batch {b}: onnxruntime/PyTorch latency {r['ratio']:.2f}x, rounds "
                    f"{r['spread'][0]:.2f}-{r['spread'][1]:.2f}: no measured difference"
                )
    return out


def _graphs_table(res: dict):
    from frugalml.report.console import table

    def cell(lat, name):
        lo, hi = lat[f"{name}_spread_s"]
        return f"{lat[f'{name}_s'] * 1e6:.1f} ({lo * 1e6:.1f}-{hi * 1e6:.1f})"

    rows = []
    for name, g in res["graphs"].items():
        for b, lat in g.get("latency", {}).items():
            rows.append([name, b, cell(lat, "export"), cell(lat, "onnxruntime"), f"{g['bytes_onnx']:,}"])
        rows.append([name, "", "", f"max |diff| {g['onnx_max_abs_diff']:.1e}", ""])
    return table(
        "ONNX graphs: latency in us, median of rounds (range), batch in frames",
        ["graph", "batch", "PyTorch eager", "onnxruntime", "bytes"],
        rows,
    )
