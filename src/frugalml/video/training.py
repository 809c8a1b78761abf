"""AR-Net's three training stages, each a resumable `frugalml.train.fit` run.

    run/config.json                  the VideoConfig (a different config in the same dir is refused)
    run/stage1/res64, res32, ...     each backbone trained alone at its resolution (uniform frames)
    run/stage1.safetensors           the stage-1 backbones (AR-Net's uniform baselines)
    run/stage2/                      policy trained with 0.95 CE + 0.05 expected FLOPs (weight configurable;
                                     FLOPs per video in units of one full-resolution backbone frame)
    run/stage3/                      backbones fine-tuned on the frames the frozen policy picks
    run/final.safetensors, result.json
    run/uniform/res64, res32, ...    the uniform baselines: each stage-1 backbone trained on (all frames)
    run/uniform.safetensors          for as many epochs, at the same batch size and learning rate, as
                                     stage 3 fine-tunes the adaptive model's: every model has the same
                                     training budget in epochs, so a gain over uniform is not extra training

Stage 2 by default keeps the stage-1 backbones frozen and caches their per-frame logits,
so a policy epoch costs only the policy (a CPU budget choice; `joint=True` trains the
backbones too, as the AR-Net paper does, running every backbone on every frame). Stage 3
then adapts the backbones to the frames the policy sends them. A killed run resumes in the
stage and epoch it reached: finished stages reload from their checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from frugalml.data.base import Dataset
from frugalml.errors import FrugalError
from frugalml.video.config import VideoConfig
from frugalml.video.model import ARNet, ARNetConfig, resize, temperature

__all__ = ["VideoConfig", "build_model", "load_data", "load_run", "train"]


def load_data(cfg: VideoConfig) -> Dataset:
    from frugalml import data

    if cfg.data in ("synthetic", "synthetic-nocue"):
        name = "synthetic-video" if cfg.data == "synthetic" else "synthetic-video-nocue"
        return data.get(name, n_train=cfg.n_train, n_test=cfg.n_test, frames=cfg.frames, size=cfg.size, seed=cfg.seed)
    path = Path(cfg.data)
    if not path.exists():
        raise FrugalError(f"--data must be 'synthetic', 'synthetic-nocue' or a folder of clips; {path} does not exist")
    return data.get("video-folder", path=path, frames=cfg.frames, size=cfg.size, seed=cfg.seed)


def build_model(cfg: VideoConfig, ds: Dataset) -> ARNet:
    torch.manual_seed(cfg.seed)
    in_ch = ds.x_train.shape[2]
    return ARNet(
        ARNetConfig(
            in_channels=in_ch,
            num_classes=ds.num_classes,
            resolutions=tuple(cfg.resolutions),
            policy_res=cfg.policy_res,
            backbone_widths=tuple(cfg.backbone_widths),
        )
    )


class _Uniform(nn.Module):
    """One backbone on every frame at its resolution, logits averaged over time."""

    def __init__(self, backbone: nn.Module, res: int):
        super().__init__()
        self.backbone, self.res = backbone, res

    def forward(self, x):
        b, t = x.shape[:2]
        return self.backbone(resize(x.reshape(b * t, *x.shape[2:]), self.res)).reshape(b, t, -1).mean(1)


def _index_dataset(ds: Dataset, tag: str) -> Dataset:
    """Clips addressed by index (train 0..N-1, test N..N+M-1) so stages can use cached tensors."""
    n, m = len(ds.y_train), len(ds.y_test)
    return Dataset(f"{ds.name}#{tag}", torch.arange(n), ds.y_train, torch.arange(n, n + m), ds.y_test, ds.num_classes)


def _rows(train: torch.Tensor, test: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    n = len(train)
    return train[idx] if int(idx[0]) < n else test[idx - n]


def _stage_summary(res) -> dict:
    return {"test_accuracy": res.final.get("test_accuracy"), "resumed_from_epoch": res.resumed_from_epoch}


def _stage1(model: ARNet, ds: Dataset, cfg: VideoConfig, out: Path, progress, log, summary: dict) -> None:
    """Each backbone on uniformly processed frames at its resolution."""
    from frugalml.train import fit

    tc = replace(cfg.backbone, seed=cfg.seed)
    for b, r in enumerate(cfg.resolutions):
        uniform = _Uniform(model.backbones[b], r)
        res = fit(
            uniform, ds, tc, out / "stage1" / f"res{r}", progress=progress, description=f"stage 1: backbone {r}px"
        )
        summary["stages"][f"stage1_res{r}"] = _stage_summary(res)
        log(f"stage 1 backbone {r}px: test accuracy {res.final.get('test_accuracy', float('nan')):.3f}")


def _uniform_finetune(cfg: VideoConfig, ds: Dataset, out: Path, progress, log, summary: dict) -> None:
    """The fair uniform baselines: stage 1's backbones trained on uniform frames as long as stage 3 trains
    the adaptive model's (same epochs, batch size and learning rate), saved as `uniform.safetensors`."""
    from frugalml.train import fit, load_weights, save_weights

    state = torch.random.get_rng_state()  # build_model seeds torch: keep the caller's generator as it was
    uniform = load_weights(build_model(cfg, ds), out / "stage1.safetensors")
    torch.random.set_rng_state(state)
    tc = replace(cfg.finetune, seed=cfg.seed + 3)
    for b, r in enumerate(cfg.resolutions):
        res = fit(
            _Uniform(uniform.backbones[b], r),
            ds,
            tc,
            out / "uniform" / f"res{r}",
            progress=progress,
            description=f"uniform baseline: backbone {r}px",
        )
        summary["stages"][f"uniform_res{r}"] = _stage_summary(res)
        log(f"uniform baseline {r}px (stage 1 + {tc.epochs} epochs): test accuracy {_fmt(res)}")
    save_weights(uniform, out / "uniform.safetensors")


def _fmt(res) -> str:
    return f"{res.final.get('test_accuracy', float('nan')):.3f}"


def _policy_loss(model: ARNet, ds: Dataset, cfg: VideoConfig, table):
    """Stage 2's loss: (1 - w) CE of the fused prediction + w expected FLOPs per video."""
    from frugalml.video.infer import in_chunks

    small_tr = resize(ds.x_train, cfg.policy_res)
    small_te = resize(ds.x_test, cfg.policy_res)
    if not cfg.joint:
        for p in model.backbones.parameters():
            p.requires_grad_(False)
        model.eval()
        logits_tr = in_chunks(model.frame_logits, ds.x_train)
        logits_te = in_chunks(model.frame_logits, ds.x_test)
    steps_per_epoch = math.ceil(len(ds.y_train) / cfg.policy.batch_size)
    w = cfg.efficiency_weight
    unit = float(table.backbone[0])  # FLOPs of one frame through the full-resolution backbone
    bb_flops = torch.tensor(table.backbone, dtype=torch.float32)

    def policy_loss(m: ARNet, idx, y):
        small = _rows(small_tr, small_te, idx)
        if cfg.joint:
            logits = m.frame_logits(_rows(ds.x_train, ds.x_test, idx))
        else:
            logits = _rows(logits_tr, logits_te, idx)
        tau = temperature(int(m.train_steps) // steps_per_epoch)
        if m.training:
            m.train_steps += 1
        fused, use, alive, _ = m.rollout(small, logits, sample=m.training, tau=tau)
        flops = (use * bb_flops).sum((1, 2)) + alive.sum(1) * table.policy_step + cfg.frames * table.policy_cnn
        loss = (1 - w) * F.cross_entropy(fused, y) + w * (flops / unit).mean()
        return loss, (fused.argmax(1) == y).sum()

    return policy_loss


def _finetune_loss(model: ARNet, ds: Dataset):
    """Stage 3's loss: policy frozen, backbones trained on the frames it picks (efficient path)."""
    from frugalml.video.infer import apply_backbones, in_chunks, policy_actions

    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.backbones.parameters():
        p.requires_grad_(True)
    model.eval()
    act_tr = in_chunks(lambda v: policy_actions(model, v), ds.x_train, batch=256)
    act_te = in_chunks(lambda v: policy_actions(model, v), ds.x_test, batch=256)

    def finetune_loss(m: ARNet, idx, y):
        x = _rows(ds.x_train, ds.x_test, idx)
        fused = apply_backbones(m, x, _rows(act_tr, act_te, idx), grad=m.training)
        if m.training and not fused.requires_grad:  # the policy ran no backbone on this whole batch
            fused = fused + 0.0 * m.backbones[0].fc.bias.sum()
        return F.cross_entropy(fused, y), (fused.argmax(1) == y).sum()

    return finetune_loss


def _fit_indexed(model, ds, tc, out: Path, stage: str, tag: str, loss, progress, description: str, summary) -> float:
    """Train stage `stage` on clips addressed by index (its loss reads cached tensors); its test accuracy."""
    from frugalml.train import fit

    res = fit(model, _index_dataset(ds, tag), tc, out / stage, loss_fn=loss, progress=progress, description=description)
    summary["stages"][stage] = _stage_summary(res)
    return res.final.get("test_accuracy", float("nan"))


def train(cfg: VideoConfig, out: str | Path, progress: bool | None = None, log=None, ds: Dataset | None = None) -> dict:
    """Run (or resume) the three stages; return the training summary (also in result.json).

    The whole run is tracked into `out/spent.json` (each stage's own fit tracks its
    sub-directory) and `out/record.json` (kind video.train) is written once it finishes.
    """
    from frugalml.cost.tracker import Ledger
    from frugalml.files import open_run

    cfg.validate()
    out = open_run(out, cfg, what="video run")
    with Ledger(out, children=True, label="video.train") as ledger:
        summary, model, ds, table = _train_stages(cfg, out, progress, log, ds)
    write_train_record(out, cfg, summary, model, ds, table, ledger.total())
    return summary


def _train_stages(cfg: VideoConfig, out: Path, progress, log, ds: Dataset | None):
    from frugalml.files import write_json
    from frugalml.train import save_weights
    from frugalml.video.infer import flops_table

    log = log or (lambda msg: None)
    ds = ds if ds is not None else load_data(cfg)
    if ds.x_train.shape[1] != cfg.frames:
        raise FrugalError(f"dataset has {ds.x_train.shape[1]} frames per clip, config asks for {cfg.frames}")
    model = build_model(cfg, ds)
    table = flops_table(model, cfg.frames)
    summary: dict = {"stages": {}, "flops": table.to_dict()}

    _stage1(model, ds, cfg, out, progress, log, summary)
    save_weights(model, out / "stage1.safetensors")

    stage2 = replace(cfg.policy, seed=cfg.seed + 1)
    loss = _policy_loss(model, ds, cfg, table)
    acc = _fit_indexed(model, ds, stage2, out, "stage2", "policy", loss, progress, "stage 2: policy", summary)
    log(f"stage 2 policy: test accuracy {acc:.3f} (argmax actions)")
    save_weights(model, out / "stage2.safetensors")

    stage3 = replace(cfg.finetune, seed=cfg.seed + 2)
    loss = _finetune_loss(model, ds)
    acc = _fit_indexed(model, ds, stage3, out, "stage3", "finetune", loss, progress, "stage 3: fine-tune", summary)
    log(f"stage 3 fine-tune: test accuracy {acc:.3f}")
    save_weights(model, out / "final.safetensors")
    _uniform_finetune(cfg, ds, out, progress, log, summary)
    summary["run_dir"] = str(out)
    summary["config"] = asdict(cfg)
    write_json(out / "result.json", summary)
    return summary, model, ds, table


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


MACS_NOTE = "counted: FlopCounterMode FLOPs / 2 per clip (frugalml.video.infer)"


def write_train_record(out: Path, cfg: VideoConfig, summary: dict, model: ARNet, ds: Dataset, table, spent: dict):
    """`out/record.json` of a trained run: adaptive (after) vs uniform full resolution (before), per clip.

    The adaptive model's MACs per clip are counted on the test clips from the policy's
    choices (the policy only, no backbone runs); its accuracy is stage 3's test accuracy.
    """
    from frugalml.cost.currency import Cost
    from frugalml.report import record
    from frugalml.video.infer import in_chunks, policy_actions, video_flops

    model.eval()
    actions = in_chunks(lambda v: policy_actions(model, v), ds.x_test, batch=256)
    adaptive_flops = float(video_flops(table, actions).mean())
    full = f"uniform_res{cfg.resolutions[0]}"
    before = Cost(params=_params(model.backbones[0]), macs=table.uniform[0] // 2, notes={"macs": MACS_NOTE})
    after = Cost(params=_params(model), macs=round(adaptive_flops / 2), notes={"macs": MACS_NOTE + ", test mean"})
    accuracies = {"accuracy": "stage3", "uniform_accuracy": full}  # a stage of 0 epochs has no test accuracy
    stages = summary["stages"]
    quality = {
        name: record.metric(stages[stage]["test_accuracy"])
        for name, stage in accuracies.items()
        if stages.get(stage, {}).get("test_accuracy") is not None
    }
    rec = record.build(
        "video.train",
        quality=quality,
        config=asdict(cfg),
        data=cfg.data,
        model="arnet",
        before=before,
        after=after,
        spent=spent,
        artifacts={"weights": "final.safetensors", "uniform_weights": "uniform.safetensors", "result": "result.json"},
    )
    return record.write(out, rec)


def load_run(out: str | Path) -> tuple[VideoConfig, ARNet, ARNet, Dataset]:
    """(config, final model, uniform-baseline model, dataset) of a finished run.

    The uniform model is `uniform.safetensors` (stage 1 trained on as long as stage 3); a run
    trained before that stage existed has only stage 1's backbones, and those are returned.
    """
    from frugalml.files import CONFIG, read_json
    from frugalml.report.cliopts import config_from_dict
    from frugalml.train import load_weights

    out = Path(out)
    if not (out / CONFIG).is_file():
        raise FrugalError(f"{out} is not a video run directory (no {CONFIG})")
    if not (out / "final.safetensors").is_file():
        raise FrugalError(f"{out} has not finished training (no final.safetensors): run `frugal video train` again")
    cfg = config_from_dict(VideoConfig, read_json(out / CONFIG), str(out / CONFIG))
    ds = load_data(cfg)
    final = load_weights(build_model(cfg, ds), out / "final.safetensors")
    uniform_path = out / "uniform.safetensors"
    if not uniform_path.is_file():
        uniform_path = out / "stage1.safetensors"
    uniform = load_weights(build_model(cfg, ds), uniform_path)
    return cfg, final.eval(), uniform.eval(), ds
