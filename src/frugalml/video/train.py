"""AR-Net's three training stages, each a resumable `frugalml.train.fit` run.

    run/config.json                  the VideoConfig (a different config in the same dir is refused)
    run/stage1/res64, res48, ...     each backbone trained alone at its resolution (uniform frames)
    run/stage1.safetensors           the uniform baselines' weights
    run/stage2/                      policy trained with 0.95 CE + 0.05 expected FLOPs (weight configurable;
                                     FLOPs per video in units of one full-resolution backbone frame)
    run/stage3/                      backbones fine-tuned on the frames the frozen policy picks
    run/final.safetensors, result.json

Stage 2 by default keeps the stage-1 backbones frozen and caches their per-frame logits,
so a policy epoch costs only the policy (a CPU budget choice; `joint=True` trains the
backbones too, as the AR-Net paper does, running every backbone on every frame). Stage 3
then adapts the backbones to the frames the policy sends them. A killed run resumes in the
stage and epoch it reached: finished stages reload from their checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from frugalml.data.base import Dataset
from frugalml.errors import FrugalError
from frugalml.video.model import ARNet, ARNetConfig, resize, temperature


@dataclass
class VideoConfig:
    data: str = "synthetic"  # synthetic | synthetic-nocue | a folder CLASS/clip.mp4
    frames: int = 16
    size: int = 64
    n_train: int = 1000  # synthetic only
    n_test: int = 500
    resolutions: list[int] = field(default_factory=lambda: [64, 48, 32])
    policy_res: int = 16
    # channels of the three stride-2 convs of every backbone: wide enough that the backbone,
    # not per-call overhead or the policy, dominates a clip's time (as ResNets do in AR-Net)
    backbone_widths: list[int] = field(default_factory=lambda: [32, 64, 128])
    epochs_backbone: int = 6
    epochs_policy: int = 12
    epochs_finetune: int = 3
    # loss = (1 - w) CE + w expected FLOPs per video, in units of one full-resolution frame
    efficiency_weight: float = 0.05
    batch_size: int = 32
    policy_batch_size: int = 16
    lr: float = 3e-3
    policy_lr: float = 1e-2
    finetune_lr: float = 1e-3
    joint: bool = False
    seed: int = 0

    def validate(self) -> None:
        if not 0 <= self.efficiency_weight < 1:
            raise FrugalError(f"--efficiency-weight must be in [0, 1), got {self.efficiency_weight}")
        if self.frames < 1 or min(self.epochs_backbone, self.epochs_policy, self.epochs_finetune) < 0:
            raise FrugalError("frames must be >= 1 and epochs >= 0")
        if sorted(self.resolutions, reverse=True) != list(self.resolutions) or len(set(self.resolutions)) < 1:
            raise FrugalError(f"resolutions must be distinct and in decreasing order, got {self.resolutions}")
        if self.resolutions[0] > self.size or self.policy_res > self.size or min(self.resolutions) < 8:
            raise FrugalError(f"resolutions {self.resolutions} / policy {self.policy_res} must lie in 8..{self.size}")
        if not self.backbone_widths or min(self.backbone_widths) < 1:
            raise FrugalError(f"backbone widths must be positive channel counts, got {self.backbone_widths}")


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


def _check_config(out: Path, cfg: VideoConfig) -> None:
    from frugalml.files import read_json, write_json

    path = out / "config.json"
    record = asdict(cfg)
    if path.exists():
        old = read_json(path)
        if old != record:
            diff = sorted(k for k in set(old) | set(record) if old.get(k) != record.get(k))
            raise FrugalError(
                f"{out} holds a video run with a different configuration ({', '.join(diff)} differ): "
                "choose another --out or delete it"
            )
    else:
        write_json(path, record)


def train(cfg: VideoConfig, out: str | Path, progress: bool | None = None, log=None, ds: Dataset | None = None) -> dict:
    """Run (or resume) the three stages; return the training summary (also in result.json)."""
    from frugalml.files import write_json
    from frugalml.train import TrainConfig, fit, save_weights
    from frugalml.video.infer import apply_backbones, flops_table, in_chunks, policy_actions

    cfg.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, cfg)
    log = log or (lambda msg: None)
    ds = ds if ds is not None else load_data(cfg)
    if ds.x_train.shape[1] != cfg.frames:
        raise FrugalError(f"dataset has {ds.x_train.shape[1]} frames per clip, config asks for {cfg.frames}")
    model = build_model(cfg, ds)
    table = flops_table(model, cfg.frames)
    summary: dict = {"stages": {}, "flops": table.to_dict()}

    # Stage 1: each backbone on uniformly processed frames at its resolution.
    for b, r in enumerate(cfg.resolutions):
        tc = TrainConfig(
            epochs=cfg.epochs_backbone,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            optimizer="adam",
            seed=cfg.seed,
            eval_batch_size=128,
        )
        res = fit(
            _Uniform(model.backbones[b], r),
            ds,
            tc,
            out / "stage1" / f"res{r}",
            progress=progress,
            description=f"stage 1: backbone {r}px",
        )
        summary["stages"][f"stage1_res{r}"] = {
            "test_accuracy": res.final.get("test_accuracy"),
            "resumed_from_epoch": res.resumed_from_epoch,
        }
        log(f"stage 1 backbone {r}px: test accuracy {res.final.get('test_accuracy', float('nan')):.3f}")
    save_weights(model, out / "stage1.safetensors")

    # Stage 2: the policy, with the efficiency loss.
    small_tr = resize(ds.x_train, cfg.policy_res)
    small_te = resize(ds.x_test, cfg.policy_res)
    if not cfg.joint:
        for p in model.backbones.parameters():
            p.requires_grad_(False)
        model.eval()
        logits_tr = in_chunks(model.frame_logits, ds.x_train)
        logits_te = in_chunks(model.frame_logits, ds.x_test)
    idx_ds = _index_dataset(ds, "policy")
    steps_per_epoch = math.ceil(len(ds.y_train) / cfg.policy_batch_size)
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

    tc2 = TrainConfig(
        epochs=cfg.epochs_policy,
        batch_size=cfg.policy_batch_size,
        lr=cfg.policy_lr,
        optimizer="adam",
        seed=cfg.seed + 1,
        eval_batch_size=256,
    )
    res2 = fit(
        model, idx_ds, tc2, out / "stage2", loss_fn=policy_loss, progress=progress, description="stage 2: policy"
    )
    summary["stages"]["stage2"] = {
        "test_accuracy": res2.final.get("test_accuracy"),
        "resumed_from_epoch": res2.resumed_from_epoch,
    }
    log(f"stage 2 policy: test accuracy {res2.final.get('test_accuracy', float('nan')):.3f} (argmax actions)")
    save_weights(model, out / "stage2.safetensors")

    # Stage 3: policy frozen, backbones fine-tuned on the frames it picks (efficient path).
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

    tc3 = TrainConfig(
        epochs=cfg.epochs_finetune,
        batch_size=cfg.batch_size,
        lr=cfg.finetune_lr,
        optimizer="adam",
        seed=cfg.seed + 2,
        eval_batch_size=128,
    )
    res3 = fit(
        model,
        _index_dataset(ds, "finetune"),
        tc3,
        out / "stage3",
        loss_fn=finetune_loss,
        progress=progress,
        description="stage 3: fine-tune",
    )
    summary["stages"]["stage3"] = {
        "test_accuracy": res3.final.get("test_accuracy"),
        "resumed_from_epoch": res3.resumed_from_epoch,
    }
    log(f"stage 3 fine-tune: test accuracy {res3.final.get('test_accuracy', float('nan')):.3f}")
    save_weights(model, out / "final.safetensors")
    summary["run_dir"] = str(out)
    summary["config"] = asdict(cfg)
    write_json(out / "result.json", summary)
    return summary


def load_run(out: str | Path) -> tuple[VideoConfig, ARNet, ARNet, Dataset]:
    """(config, final model, stage-1 model, dataset) of a finished run."""
    from frugalml.files import read_json
    from frugalml.train import load_weights

    out = Path(out)
    if not (out / "config.json").is_file():
        raise FrugalError(f"{out} is not a video run directory (no config.json)")
    if not (out / "final.safetensors").is_file():
        raise FrugalError(f"{out} has not finished training (no final.safetensors): run `frugal video train` again")
    try:
        cfg = VideoConfig(**read_json(out / "config.json"))
    except TypeError as e:
        raise FrugalError(f"{out}/config.json is not a video config: {e}") from None
    ds = load_data(cfg)
    final = load_weights(build_model(cfg, ds), out / "final.safetensors")
    stage1 = load_weights(build_model(cfg, ds), out / "stage1.safetensors")
    return cfg, final.eval(), stage1.eval(), ds
