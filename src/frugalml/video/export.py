"""`frugal video export`: a trained AR-Net as files to deploy.

- safetensors: `model.safetensors` + `export.json` (the `ARNetConfig`); `frugalml.load(dir)`
  gives the `ARNet` back.
- onnx: also one ONNX graph per part, since the adaptive loop (which frames, which backbone)
  is control flow that stays in the host program: `backbone_res<R>.onnx` per resolution
  (frames -> logits), `policy_cnn.onnx` (frames at the policy resolution -> features) and
  `policy_step.onnx` (features, h, c -> action logits, h, c). Each is checked in onnxruntime
  against PyTorch and timed at batch 1 and 256 frames beside PyTorch eager
  (`frugalml.models.deploy`). The whole adaptive path is then run on the test clips with
  every part in onnxruntime (`infer.adaptive_logits` over those graphs): its accuracy, its
  largest logit difference from the PyTorch path, the share of frames where both paths chose
  the same action, and the share the policy sent to a backbone (0: the comparison saw no backbone).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import torch

from frugalml.errors import FrugalError
from frugalml.files import read_json, write_json

FORMATS = ("safetensors", "onnx")
BATCHES = (1, 256)


def export(run: str | Path, out: str | Path, fmt: str = "onnx", measure: bool = True) -> dict:
    """Export the final model of the video run `run` into `out` (written whole or not at all)."""
    from frugalml.cost.tracker import Ledger
    from frugalml.files import staged_dir
    from frugalml.train import save_weights
    from frugalml.video.training import load_run

    if fmt not in FORMATS:
        raise FrugalError(f"unknown export format '{fmt}' ({', '.join(FORMATS)})")
    _cfg, model, _stage1, ds = load_run(run)
    out = Path(out)
    with staged_dir(out, "video.export") as work:
        with Ledger(work, children=True, label="video.export", use_codecarbon=False) as ledger:
            save_weights(model, work / "model.safetensors")
            write_json(work / "export.json", {"kind": "frugalml.video.arnet", "arnet": asdict(model.cfg)})
            res = {"run": str(run), "out": str(out), "format": fmt, "file": str(out / "model.safetensors")}
            res["bytes_safetensors"] = (work / "model.safetensors").stat().st_size
            res["params"] = sum(p.numel() for p in model.parameters())
            if fmt == "onnx":
                res |= _onnx(model, ds, work, out, measure)
            write_json(work / "result.json", res)
        _record(work, res, ledger.total())
    return res


def _parts(model, ds) -> dict[str, tuple]:
    """name -> (module, example frames or inputs from the test clips, input names, output names)."""
    from frugalml.video.model import resize

    cfg = model.cfg
    frames = ds.x_test.reshape(-1, *ds.x_test.shape[2:])
    parts = {
        f"backbone_res{r}": (bb, resize(frames, r), ("frames",), ("logits",))
        for bb, r in zip(model.backbones, cfg.resolutions)
    }
    small = resize(frames, cfg.policy_res)
    with torch.no_grad():
        feats = model.policy_cnn(small)
    g = torch.Generator().manual_seed(0)  # LSTM states of the size the policy carries, not all zero
    h, c = (0.5 * torch.randn(len(feats), cfg.hidden, generator=g) for _ in range(2))
    parts["policy_cnn"] = (model.policy_cnn, small, ("frames",), ("features",))
    parts["policy_step"] = (model.policy_step, (feats, h, c), ("features", "h", "c"), ("actions", "h_next", "c_next"))
    return parts


def _onnx(model, ds, work: Path, out: Path, measure: bool) -> dict:
    from frugalml.models import deploy

    graphs = {}
    for name, (module, x, ins, outs) in _parts(model, ds).items():
        xs = {b: deploy.batch_of(x, b) for b in BATCHES}
        rep = deploy.onnx_report(module, work / f"{name}.onnx", xs, measure=measure, input_names=ins, output_names=outs)
        graphs[name] = {"file": str(out / f"{name}.onnx")} | rep
    ort_net = onnx_arnet(model.cfg, work)
    with torch.no_grad():
        want, acts = _adaptive(model, ds.x_test)
        got, ort_acts = _adaptive(ort_net, ds.x_test)
    acc = lambda logits: float((logits.argmax(1) == ds.y_test).float().mean())  # noqa: E731
    return {
        "actions_agree": float((acts == ort_acts).float().mean()),
        "frames_to_a_backbone": float(((acts >= 0) & (acts < model.num_backbones)).float().mean()),
        "graphs": graphs,
        "onnx_max_abs_diff": max([float((got - want).abs().max())] + [g["onnx_max_abs_diff"] for g in graphs.values()]),
        "adaptive_max_abs_diff": float((got - want).abs().max()),
        "accuracy": acc(want),
        "accuracy_onnx": acc(got),
        "test_clips": len(ds.y_test),
        "bytes_onnx": sum(g["bytes_onnx"] for g in graphs.values()),
    }


def _adaptive(net, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The adaptive path's fused logits and actions over clips `x`, in chunks of at least two clips (the
    batched path: the one-clip path reads the policy's weights directly)."""
    from frugalml.video.infer import adaptive_logits

    logits, actions = [], []
    for i in range(0, len(x), 64):
        chunk = x[i : i + 64]
        two = torch.cat([chunk, chunk]) if len(chunk) == 1 else chunk
        out, acts = adaptive_logits(net, two)
        logits.append(out[: len(chunk)])
        actions.append(acts[: len(chunk)])
    return torch.cat(logits), torch.cat(actions)


def onnx_arnet(cfg, folder: str | Path) -> SimpleNamespace:
    """An AR-Net whose parts run in onnxruntime from the graphs in `folder` (batched inference only)."""
    from frugalml.models.deploy import OnnxModule

    folder = Path(folder)
    return SimpleNamespace(
        cfg=cfg,
        num_backbones=len(cfg.resolutions),
        backbones=[OnnxModule(folder / f"backbone_res{r}.onnx") for r in cfg.resolutions],
        policy_cnn=OnnxModule(folder / "policy_cnn.onnx"),
        policy_step=OnnxModule(folder / "policy_step.onnx"),
    )


def load_export(folder: str | Path):
    """The `ARNet` of a video export directory (eval mode)."""
    from frugalml.train import load_weights
    from frugalml.video.model import ARNet, ARNetConfig

    folder = Path(folder)
    info = read_json(folder / "export.json")
    if info.get("kind") != "frugalml.video.arnet":
        raise FrugalError(f"{folder} is not a video export (export.json kind {info.get('kind')!r})")
    a = info["arnet"]
    cfg = ARNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in a.items()})
    return load_weights(ARNet(cfg), folder / "model.safetensors").eval()


def _record(work: Path, res: dict, spent: dict) -> Path:
    from frugalml.report import record

    quality = {}
    artifacts = {
        "weights": "model.safetensors",
        "export": "export.json",
        "result": "result.json",
        "spent": "spent.json",
    }
    if res["format"] == "onnx":
        quality["accuracy"] = record.metric(res["accuracy_onnx"])
        quality["pytorch_accuracy"] = record.metric(res["accuracy"])
        quality["onnx_max_abs_diff"] = record.metric(res["onnx_max_abs_diff"], higher_is_better=False)
        artifacts |= {name: f"{name}.onnx" for name in res["graphs"]}
    notes = {"params": f"counted; model.safetensors {res['bytes_safetensors']:,} bytes"}
    rec = record.build(
        "video.export",
        quality=quality,
        config={"run": res["run"], "format": res["format"]},
        model="ARNet",
        after={"params": res["params"], "notes": notes},
        spent=spent,
        artifacts=artifacts,
    )
    return record.write(work, rec)
