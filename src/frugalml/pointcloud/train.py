"""Training, scoring (IoU per class, mIoU) and saved model directories for point-voxel networks.

A model directory holds `model.json` (architecture, classes, data settings, scores),
`weights.safetensors` and the training checkpoint; `train_model` resumes a killed run
through `frugalml.train.fit`, and `load_model` rebuilds the network from the directory.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import torch
from torch.nn import functional as F

from frugalml.errors import FrugalError
from frugalml.files import read_json, write_json
from frugalml.pointcloud.model import Arch, PVNet
from frugalml.train import TrainConfig, fit, load_weights, save_weights

IGNORE = -1
MODEL_JSON = "model.json"
WEIGHTS = "weights.safetensors"


def class_weights(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Cross-entropy weights ~ 1/sqrt(frequency), mean 1 over classes: rare classes (poles, signs) still learn."""
    counts = torch.bincount(y[y != IGNORE].reshape(-1), minlength=num_classes).double().clamp(min=1)
    w = counts.rsqrt()
    return (w / w.mean()).float()


def segmentation_loss(model, x, y, teacher_logits=None, weight: torch.Tensor | None = None):
    """(loss, sum of per-scene point accuracies, logits) for a (B, N, 4) batch with (B, N) labels.

    Points labelled IGNORE count for neither. With `teacher_logits` the loss is the KL
    divergence to the teacher's per-point distribution (in-place distillation).
    """
    logits = model(x)
    flat, target = logits.reshape(-1, logits.shape[-1]), y.reshape(-1)
    valid = target != IGNORE
    if teacher_logits is None:
        loss = F.cross_entropy(flat, target, weight=weight, ignore_index=IGNORE) if valid.any() else flat.sum() * 0
    else:
        t = teacher_logits.reshape(-1, logits.shape[-1])[valid]
        loss = F.kl_div(F.log_softmax(flat[valid], -1), F.softmax(t, -1), reduction="batchmean")
    hit = ((logits.argmax(-1) == y) & (y != IGNORE)).sum(1).float()
    per_scene = hit / (y != IGNORE).sum(1).clamp(min=1)
    return loss, per_scene.sum(), logits


def make_fit_loss(weight: torch.Tensor | None = None):
    """A `frugalml.train.fit` loss: (loss, correct) where accuracy = mean per-scene point accuracy."""

    def fit_loss(model, x, y):
        loss, correct, _ = segmentation_loss(model, x, y, weight=weight)
        return loss, correct

    return fit_loss


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(classes, classes) counts, rows = truth, columns = prediction; IGNORE points left out."""
    ok = target != IGNORE
    idx = target[ok] * num_classes + pred[ok]
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_from_confusion(conf: torch.Tensor) -> tuple[float, list[float | None]]:
    """(mIoU, IoU per class); a class absent from both truth and prediction has IoU None and is not averaged."""
    conf = conf.double()
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    per = [float(tp[c] / union[c]) if union[c] > 0 else None for c in range(len(tp))]
    present = [v for v in per if v is not None]
    return (sum(present) / len(present) if present else math.nan), per


@torch.no_grad()
def predict(model: PVNet, x: torch.Tensor, batch_size: int = 4) -> torch.Tensor:
    model.eval()
    out = [model(x[i : i + batch_size]).argmax(-1) for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.zeros(x.shape[:2], dtype=torch.long)


@torch.no_grad()
def score(model: PVNet, x: torch.Tensor, y: torch.Tensor, num_classes: int, batch_size: int = 4) -> dict:
    """mIoU, IoU per class and point accuracy of `model` on scenes (S, N, 4) with labels (S, N)."""
    pred = predict(model, x, batch_size)
    conf = confusion(pred.reshape(-1), y.reshape(-1), num_classes)
    miou, per = iou_from_confusion(conf)
    total = int(conf.sum())
    return {
        "miou": miou,
        "per_class_iou": per,
        "accuracy": float(conf.diag().sum()) / total if total else math.nan,
        "points": total,
    }


@torch.no_grad()
def score_scans(model: PVNet, scans, num_classes: int) -> dict:
    """Like `score`, for variable-size scans (`data.pointcloud.Scene`s); empty scans are skipped."""
    model.eval()
    conf = torch.zeros(num_classes, num_classes, dtype=torch.long)
    empty = 0
    for s in scans:
        if len(s.labels) == 0:
            empty += 1
            continue
        pts = torch.from_numpy(s.points)
        pred = model.forward_points(pts, torch.zeros(len(pts), dtype=torch.long)).argmax(-1)
        conf += confusion(pred, torch.from_numpy(s.labels), num_classes)
    miou, per = iou_from_confusion(conf)
    total = int(conf.sum())
    return {
        "miou": miou,
        "per_class_iou": per,
        "accuracy": float(conf.diag().sum()) / total if total else math.nan,
        "points": total,
        "scans": len(scans),
        "empty_scans": empty,
    }


def pointcloud_training(**changes) -> TrainConfig:
    """How a point-voxel net is trained by default (Adam, cosine, small batches of scenes), with `changes`."""
    base = {"epochs": 12, "batch_size": 4, "lr": 0.01, "optimizer": "adam", "schedule": "cosine", "eval_batch_size": 8}
    return TrainConfig(**(base | changes))


def train_model(
    arch: Arch,
    ds,
    cfg: TrainConfig,
    out: str | Path,
    data_config: dict | None = None,
    progress: bool | None = None,
    init: PVNet | None = None,
) -> dict:
    """Train `arch` on `ds` (seeded by cfg.seed), save it as a model directory, score it on the test split.

    `init`: start from these weights (e.g. a subnet extracted from a supernet) instead of a fresh init.
    A finished directory with the same settings returns its stored result.
    """
    out = Path(out)
    meta_path = out / MODEL_JSON
    record = {
        "arch": arch.to_dict(),
        "train": {k: v for k, v in asdict(cfg).items() if k not in ("threads", "device")},  # not what it computes
        "data": data_config or {"name": ds.name},
        "init": "supernet" if init is not None else "scratch",
    }
    if meta_path.exists():
        old = read_json(meta_path)
        if {k: old.get(k) for k in record} == record and "result" in old:
            return old
    torch.manual_seed(cfg.seed)
    net = init if init is not None else PVNet(arch, ds.num_classes)
    loss_fn = make_fit_loss(class_weights(ds.y_train, ds.num_classes))
    res = fit(net, ds, cfg, out, loss_fn=loss_fn, progress=progress, description=f"train {out.name}")
    save_weights(net, out / WEIGHTS)
    sc = score(net, ds.x_test, ds.y_test, ds.num_classes)
    classes = ds.info.get("classes") or [str(i) for i in range(ds.num_classes)]
    meta = record | {
        "num_classes": ds.num_classes,
        "classes": classes,
        "result": sc | {"seconds": res.seconds, "history": res.history},
    }
    write_json(meta_path, meta)
    return meta


def load_model(model_dir: str | Path) -> tuple[PVNet, dict]:
    """(network in eval mode, its model.json) from a model directory."""
    model_dir = Path(model_dir)
    if not (model_dir / MODEL_JSON).is_file():
        raise FrugalError(f"{model_dir} is not a point-cloud model directory (no {MODEL_JSON})")
    meta = read_json(model_dir / MODEL_JSON)
    try:
        arch = Arch.from_dict(meta["arch"])
        net = PVNet(arch, int(meta["num_classes"]))
    except (KeyError, TypeError, ValueError) as e:
        raise FrugalError(f"{model_dir / MODEL_JSON} is malformed: {e}") from None
    load_weights(net, model_dir / WEIGHTS)
    return net.eval(), meta


def count_macs(model, x: torch.Tensor) -> int:
    """MACs of one forward pass: every matmul `cost.trace` counts (sparse convs are gathered matmuls)."""
    from frugalml.cost.tracing import trace

    return trace(model, x, grad=False).total_macs


def model_cost(model, scene: torch.Tensor, threads: int = 1, min_run_time: float = 0.5) -> dict:
    """Params, MACs and measured CPU latency of `model` on one scene (1, N, 4)."""
    from frugalml.cost.latency import measure_latency

    lat = measure_latency(model, scene, threads=threads, min_run_time=min_run_time)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "macs": count_macs(model, scene),
        "latency_ms": lat.median_s * 1e3,
        "latency_iqr_ms": lat.iqr_s * 1e3,
        "threads": threads,
        "points_per_scene": int(scene.shape[1]),
    }


# ---- run records -------------------------------------------------------------------------


def _quality(scores: dict) -> dict:
    from frugalml.report import record

    return {"miou": record.metric(scores["miou"]), "accuracy": record.metric(scores["accuracy"])}


def train_recorded(arch: Arch, ds, cfg: TrainConfig, out: str | Path, data_config: dict | None = None, **kw) -> dict:
    """`train_model` under the run's spent ledger, then its `record.json` (kind pointcloud.train):
    quality mIoU and point accuracy on the test split; after = the trained net's params and MACs
    of one test scene (one traced forward pass; latency is measured by `frugal pointcloud eval`)."""
    from frugalml.cost.currency import Cost
    from frugalml.cost.tracker import Ledger
    from frugalml.report import record

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with Ledger(out, children=True, label="pointcloud.train") as ledger:
        meta = train_model(arch, ds, cfg, out, data_config=data_config, **kw)
    net, _ = load_model(out)
    after = Cost(params=sum(p.numel() for p in net.parameters()), notes={"params": "counted"})
    if len(ds.y_test):
        after.macs = count_macs(net, ds.x_test[:1])
        after.notes["macs"] = f"counted (traced, one test scene of {ds.x_test.shape[1]} points)"
    rec = record.build(
        "pointcloud.train",
        quality=_quality(meta["result"]),
        config={"arch": meta["arch"], "train": meta["train"], "init": meta["init"]},
        data=meta["data"],
        model="spvcnn" if meta["arch"].get("point_branch", True) else "minkunet",
        after=after,
        spent=ledger.total(),
        artifacts={"weights": WEIGHTS, "model": MODEL_JSON, "spent": "spent.json"},
    )
    record.write(out, rec)
    return meta


def write_eval_record(out: str | Path, model_dir: str | Path, res: dict, spent: dict, render: str | None) -> Path:
    """`record.json` of `frugal pointcloud eval` (kind pointcloud.eval) in `out`: quality mIoU and
    point accuracy, after = the model's params, MACs and measured latency per scene."""
    import os

    from frugalml.cost.currency import MEASURED, Cost
    from frugalml.report import record

    out = Path(out)
    after = None
    if res.get("macs") is not None:
        after = Cost(
            params=res["params"],
            macs=res["macs"],
            latency_s=res["latency_ms"] / 1e3,
            notes={
                "params": "counted",
                "macs": f"counted (traced, one scene of {res['points_per_scene']} points)",
                "latency_s": f"{MEASURED} on this host, median, {res['threads']} thread(s)",
            },
        )
    artifacts = {"model": os.path.relpath(Path(model_dir) / WEIGHTS, out), "spent": "spent.json"}
    if render:
        artifacts["render"] = os.path.relpath(render, out)
    rec = record.build(
        "pointcloud.eval",
        quality=_quality(res),
        config={"model_dir": str(model_dir), "data": res["data"]},
        data=res["data"],
        model=str(model_dir),
        after=after,
        spent=spent,
        artifacts=artifacts,
    )
    return record.write(out, rec)
