"""`frugal pointcloud ...`: train, evaluate and render point-voxel segmentation networks.

Search lives in `frugal nas train --space pointvoxel`, then `frugal nas search --run` (see `frugalml.pointcloud.space`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from frugalml.errors import FrugalError
from frugalml.report.cliopts import given_on_command_line, quick_help, renamed

app = typer.Typer(no_args_is_help=True, help="3D point-voxel networks on LiDAR-like scenes.")
JSON = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")
# --quick: smoke-sized values of the options the user did not give (a few seconds on 2 cores)
QUICK_TRAIN = {"epochs": 2, "scenes_train": 4, "scenes_test": 2, "points": 512}


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise FrugalError(message)


def _png(path: Path | None, flag: str) -> None:
    """A PNG to write: named .png (its directory is created), not a directory."""
    if path is not None:
        _check(path.suffix.lower() == ".png" and not path.is_dir(), f"{flag} {path}: expected a .png file name")


def _out_dir(path: Path | None) -> None:
    _check(path is None or not path.is_file(), f"--out {path} is a file, not a directory")


def _saved(path, json_out: bool) -> None:
    from frugalml.report.console import print_saved

    print_saved(path, json_out)


def _data_config(scenes_train: int, scenes_test: int, points: int, seed: int) -> dict:
    return {"name": "lidar", "scenes_train": scenes_train, "scenes_test": scenes_test, "points": points, "seed": seed}


def _lidar(cfg: dict):
    from frugalml import data

    return data.get("lidar", **{k: v for k, v in cfg.items() if k != "name"})


@app.command()
def train(
    arch: str = typer.Option("spvcnn", help="Network architecture: spvcnn (point-voxel) or minkunet (voxel-only)."),
    width: float = typer.Option(0.5, help="Channel multiplier of the base widths 32-32-64-128-64-48-32."),
    voxel: float = typer.Option(0.4, help="Voxel size in metres."),
    depth: int = typer.Option(1, help="Residual blocks per U-Net stage."),
    epochs: int = typer.Option(8, help="Training epochs."),
    batch_size: int = typer.Option(4, help="Scenes per step."),
    lr: float = typer.Option(0.01, help="Adam learning rate (cosine schedule)."),
    seed: int = typer.Option(0, help="Seed of initialisation and data order."),
    threads: int = typer.Option(1, help="Torch threads (small sparse ops: more threads rarely help)."),
    scenes_train: int = typer.Option(48, help="Generated training scenes."),
    scenes_test: int = typer.Option(16, help="Generated test scenes."),
    points: int = typer.Option(2048, help="Points per scene."),
    data_seed: int = typer.Option(0, help="Seed of the generated scenes."),
    quick: bool = typer.Option(False, "--quick", help=quick_help(QUICK_TRAIN)),
    out: Path = typer.Option(
        None,
        help="Model directory (default runs/pointcloud/<arch>-w<width>-v<voxel>-s<seed>, -quick added under --quick).",
    ),
    json_out: bool = JSON,
):
    """Train a network on generated street scenes into a model directory (resumes if killed)."""
    from frugalml.pointcloud.model import minkunet, spvcnn
    from frugalml.pointcloud.train import pointcloud_training, train_recorded

    sizes = {"epochs": epochs, "scenes_train": scenes_train, "scenes_test": scenes_test, "points": points}
    if quick:
        sizes |= {k: v for k, v in QUICK_TRAIN.items() if not given_on_command_line(k)}
    makers = {"spvcnn": spvcnn, "minkunet": minkunet}
    _check(arch in makers, f"unknown --arch '{arch}' (spvcnn, minkunet)")
    _check(0 < width <= 4, f"--width must be in (0, 4], got {width:g}")
    _check(0 < voxel <= 5, f"--voxel must be in (0, 5] m, got {voxel:g}")
    _check(depth >= 0, f"--depth must be >= 0, got {depth}")
    for flag, v, least in (
        ("--epochs", sizes["epochs"], 1),
        ("--batch-size", batch_size, 1),
        ("--threads", threads, 1),
    ):
        _check(v >= least, f"{flag} must be >= {least}, got {v}")
    for k in ("scenes_train", "scenes_test", "points"):
        _check(sizes[k] >= 1, f"--{k.replace('_', '-')} must be >= 1, got {sizes[k]}")
    _check(lr > 0, f"--lr must be > 0, got {lr:g}")
    _out_dir(out)
    a = makers[arch](width, voxel, depth)
    dcfg = _data_config(sizes["scenes_train"], sizes["scenes_test"], sizes["points"], data_seed)
    ds = _lidar(dcfg)
    out = out or Path("runs/pointcloud") / f"{arch}-w{width:g}-v{voxel:g}-s{seed}{'-quick' if quick else ''}"
    cfg = pointcloud_training(epochs=sizes["epochs"], batch_size=batch_size, lr=lr, seed=seed, threads=threads)
    meta = train_recorded(a, ds, cfg, out, data_config=dcfg, progress=None if not json_out else False)
    r = meta["result"]
    res = {
        "model_dir": str(out),
        "arch": meta["arch"],
        "miou": r["miou"],
        "per_class_iou": dict(zip(meta["classes"], r["per_class_iou"])),
        "accuracy": r["accuracy"],
        "seconds": r["seconds"],
    }
    if json_out:
        from frugalml.report.console import print_json

        print_json(res)
    else:
        from frugalml.report.console import stdout_console

        stdout_console().print(
            f"{arch} (width {width:g}, voxel {voxel:g} m) trained {sizes['epochs']} epochs in {r['seconds']:.1f} s: "
            f"test mIoU {r['miou']:.3f}, point accuracy {r['accuracy']:.3f}"
        )
    _saved(out, json_out)


@app.command("eval", context_settings=renamed({"--model": "--run"}))
def eval_cmd(
    run: Path = typer.Option(..., "--run", help="Run directory of `frugal pointcloud train` (the trained model)."),
    scans: Path = typer.Option(
        None,
        help="SemanticKITTI-layout directory (velodyne/*.bin, labels/*.label) instead of the generated test scenes.",
    ),
    limit: int = typer.Option(None, help="At most this many scans from --scans."),
    render: Path = typer.Option(None, help="Also save a top view of the first scene coloured by prediction (PNG)."),
    threads: int = typer.Option(1, help="Threads for the latency measurement."),
    out: Path = typer.Option(None, help="Run directory of this evaluation's record.json (default <run>/eval)."),
    json_out: bool = JSON,
):
    """mIoU, IoU per class, MACs and measured CPU latency of a trained model."""
    from frugalml.cost.tracker import Ledger
    from frugalml.pointcloud.train import load_model, write_eval_record

    _check(threads >= 1, f"--threads must be >= 1, got {threads}")
    _check(limit is None or limit >= 1, f"--limit must be >= 1, got {limit}")
    _png(render, "--render")
    _out_dir(out)
    net, meta = load_model(run)
    if scans is not None:  # fail on a directory without scans before writing anything
        from frugalml.data.pointcloud import load_sequence

        load_sequence(scans, 1)
    out = out or run / "eval"
    out.mkdir(parents=True, exist_ok=True)
    with Ledger(out, children=True, label="pointcloud.eval") as ledger:
        res = _evaluate(net, meta, run, scans, limit, render, threads)
    write_eval_record(out, run, res, ledger.total(), res.get("render"))
    res["run_dir"] = str(out)
    if json_out:
        from frugalml.report.console import print_json

        print_json(res)
    else:
        _print_eval(res, run, threads, render)
    _saved(out, json_out)


def _evaluate(net, meta: dict, model: Path, scans, limit, render, threads: int) -> dict:
    """Score `net` (generated test split or `scans`), cost one scene, render it if asked."""
    from frugalml.pointcloud.train import model_cost

    classes = meta.get("classes") or [str(i) for i in range(meta["num_classes"])]
    ev = _score_scans_dir(net, meta, scans, limit) if scans is not None else _score_generated(net, meta, model)
    sc = ev.scores
    if ev.scene_pts is not None:
        cost = model_cost(net, ev.scene_pts, threads=threads)
    else:
        cost = {"macs": None, "latency_ms": None}
    res = {
        "model_dir": str(model),
        "data": ev.source,
        "miou": sc["miou"],
        "per_class_iou": dict(zip(classes, sc["per_class_iou"])),
        "accuracy": sc["accuracy"],
        "points": sc["points"],
    } | cost
    if "empty_scans" in sc:
        res |= {"scans": sc["scans"], "empty_scans": sc["empty_scans"]}
    if render is not None and ev.scene_pts is not None:
        _render_scene(net, ev, classes, render, title=f"{model.name}: mIoU {sc['miou']:.3f}")
        res["render"] = str(render)
    return res


class _Evaluated:
    """Scores of a model on some data, that data's name, and one scene (points, labels) to time and render."""

    def __init__(self, scores: dict, source: str, scene_pts=None, scene_lab=None):
        self.scores, self.source, self.scene_pts, self.scene_lab = scores, source, scene_pts, scene_lab


def _score_scans_dir(net, meta: dict, scans: Path, limit: int | None) -> _Evaluated:
    """Score on SemanticKITTI-layout scans; the first labelled scan is the scene."""
    import torch

    from frugalml.data.pointcloud import load_sequence
    from frugalml.pointcloud.train import score_scans

    named = load_sequence(scans, limit)
    sc = score_scans(net, [s for _, s in named], meta["num_classes"])
    first = next((s for _, s in named if len(s.labels)), None)
    if first is None:
        return _Evaluated(sc, str(scans))
    return _Evaluated(sc, str(scans), torch.from_numpy(first.points)[None], first.labels)


def _score_generated(net, meta: dict, model: Path) -> _Evaluated:
    """Score on the test split of the generated data the model was trained on; its first scene is the scene."""
    from frugalml.pointcloud.train import score

    dcfg = dict(meta["data"])
    if dcfg.get("name") == "lidar":
        ds = _lidar(dcfg)
    elif "scenes_val" in dcfg:  # trained on the `pointvoxel` search space's split (the benchmark)
        from frugalml.pointcloud.space import PointVoxelSpace

        quick = bool(dcfg.pop("quick", False))
        ds = PointVoxelSpace(**{k: v for k, v in dcfg.items() if k != "name"}).dataset(quick=quick)[2]
    else:
        raise FrugalError(f"{model}: trained on '{dcfg.get('name')}', pass --scans to evaluate it")
    sc = score(net, ds.x_test, ds.y_test, meta["num_classes"])
    source = f"generated lidar test split {dcfg}"
    if not len(ds.y_test):
        return _Evaluated(sc, source)
    return _Evaluated(sc, source, ds.x_test[:1], ds.y_test[0].numpy())


def _render_scene(net, ev: _Evaluated, classes: list, path: Path, title: str) -> None:
    """Top view of the scene coloured by prediction and by ground truth."""
    import numpy as np
    import torch

    from frugalml.pointcloud.render import render_top_view

    with torch.no_grad():
        pred = net(ev.scene_pts)[0].argmax(-1).numpy()
    pts = ev.scene_pts[0].numpy()
    render_top_view(pts, {"predicted": pred, "ground truth": np.asarray(ev.scene_lab)}, classes, path, title=title)


def _print_eval(res: dict, model: Path, threads: int, render: Path | None) -> None:
    from frugalml.report.console import fmt_num, stdout_console, table

    con = stdout_console()
    rows = [[c, "-" if v is None else f"{v:.3f}"] for c, v in res["per_class_iou"].items()]
    con.print(table(f"{model}: IoU per class", ["class", "IoU"], rows))
    con.print(f"mIoU {res['miou']:.3f}, point accuracy {res['accuracy']:.3f} over {res['points']:,} points")
    if res.get("macs") is not None:
        con.print(
            f"{fmt_num(res['macs'] / 1e6)} MMACs and {res['latency_ms']:.1f} ms per scene of "
            f"{res['points_per_scene']:,} points (median, IQR {res['latency_iqr_ms']:.2g} ms; "
            f"{threads} thread(s), measured here)"
        )
    if render is not None:
        con.print(f"top view: {render}")


@app.command(context_settings=renamed({"--out": "--plot"}))
def scene(
    seed: int = typer.Option(0, help="Scene seed."),
    plot: Path = typer.Option(Path("scene.png"), help="Write the top view (PNG) here."),
    beams: int = typer.Option(32, help="Laser beams of the simulated scanner (rows of the scan)."),
    azimuths: int = typer.Option(360, help="Azimuth steps per revolution (columns of the scan)."),
    json_out: bool = JSON,
):
    """Generate one ray-cast street scene and save its top view coloured by true class."""
    import numpy as np

    from frugalml.data.pointcloud import CLASSES, make_scene
    from frugalml.pointcloud.render import render_top_view

    _check(seed >= 0, f"--seed must be >= 0, got {seed}")
    _check(beams >= 1 and azimuths >= 1, f"--beams and --azimuths must be >= 1, got {beams} and {azimuths}")
    _png(plot, "--plot")

    s = make_scene(seed, beams=beams, azimuths=azimuths)
    render_top_view(
        s.points, {"ground truth": s.labels}, CLASSES, plot, title=f"scene {seed}: {len(s.labels):,} points"
    )
    counts = dict(zip(CLASSES, np.bincount(s.labels, minlength=len(CLASSES)).tolist()))
    res = {"seed": seed, "points": len(s.labels), "per_class_points": counts, "png": str(plot)}
    if json_out:
        from frugalml.report.console import print_json

        print_json(res)
    else:
        from frugalml.report.console import stdout_console

        per_class = ", ".join(f"{k} {v}" for k, v in counts.items())
        stdout_console().print(f"scene {seed}: {len(s.labels):,} points: {per_class}")
    _saved(plot, json_out)
