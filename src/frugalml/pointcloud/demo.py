"""`frugal demo` step: a voxel-only network vs a small point-voxel network on generated LiDAR scenes."""

from __future__ import annotations

from pathlib import Path


def demo(out: Path, quick: bool, console) -> list[dict]:
    from frugalml import data
    from frugalml.pointcloud.model import minkunet, spvcnn
    from frugalml.pointcloud.train import load_model, model_cost, pointcloud_training, train_recorded
    from frugalml.report.console import demo_row

    dcfg = (
        {"scenes_train": 4, "scenes_test": 2, "points": 512}
        if quick
        else {"scenes_train": 24, "scenes_test": 8, "points": 2048}
    )
    ds = data.get("lidar", **dcfg)
    cfg = pointcloud_training(epochs=1 if quick else 6, seed=0)
    res = {}
    for name, arch in (("voxel-only", minkunet(0.5, 0.4)), ("point-voxel", spvcnn(0.25, 0.5))):
        meta = train_recorded(arch, ds, cfg, Path(out) / name, data_config={"name": "lidar"} | dcfg, progress=False)
        net, _ = load_model(Path(out) / name)
        res[name] = meta["result"] | model_cost(net, ds.x_test[:1], min_run_time=0.2)
    a, b = res["voxel-only"], res["point-voxel"]
    if console is not None:
        console.print(
            f"[bold]pointcloud[/bold] {dcfg['scenes_train']} ray-cast scenes, {cfg.epochs} epoch(s): voxel-only "
            f"MinkUNet mIoU {a['miou']:.3f} at {a['macs'] / 1e6:.1f} MMACs, {a['latency_ms']:.0f} ms; point-voxel "
            f"mIoU {b['miou']:.3f} at {b['macs'] / 1e6:.1f} MMACs, {b['latency_ms']:.0f} ms per scene"
        )
    note = f"mIoU {a['miou']:.3f} -> {b['miou']:.3f}; latency {a['latency_ms']:.0f} -> {b['latency_ms']:.0f} ms"
    return [
        demo_row(
            "pointcloud", "voxel-only MinkUNet -> small point-voxel net", "MACs per scene", a["macs"], b["macs"], note
        )
    ]
