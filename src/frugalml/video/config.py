"""What an AR-Net run is: `VideoConfig`, with one embedded `TrainConfig` per training stage.

Torch-free, so `frugal video` can build its options from the dataclass without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from frugalml.errors import FrugalError
from frugalml.trainconfig import TrainConfig


def _stage(epochs: int, batch_size: int, lr: float, eval_batch_size: int) -> TrainConfig:
    # each stage's seed is the run's seed plus the stage's offset, set when the stage runs
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer="adam", eval_batch_size=eval_batch_size)


@dataclass
class VideoConfig:
    data: str = field(
        default="synthetic",
        metadata={"help": "synthetic, synthetic-nocue (control), or your own data: a folder CLASS/clip.mp4."},
    )
    frames: int = field(default=16, metadata={"help": "Frames per clip."})
    size: int = field(default=64, metadata={"help": "Frame size in px (frames are resized to size x size)."})
    n_train: int = field(default=1000, metadata={"help": "Synthetic training clips."})
    n_test: int = field(default=500, metadata={"help": "Synthetic test clips."})
    # 64 and 32 px. At 32 px, 2x2 area pooling keeps the coarse (s=4) textures exactly and cancels the
    # rest (in a pilot on 800 clips its backbone read every informative frame it can read after 4
    # uniform epochs; in the 600-clip benchmark 0.77 of them). A 48 px backbone reads s=2 textures only
    # through 4:3 aliasing (a stripe becomes one line in three) and learnt slowly (pilot: 0.66 of the
    # frames it can read after 5 epochs, still rising), so the policy rarely chose it: it is left out.
    resolutions: list[int] = field(default_factory=lambda: [64, 32])
    policy_res: int = 16
    # channels of the three stride-2 convs of every backbone: wide enough that the backbone,
    # not per-call overhead or the policy, dominates a clip's time (as ResNets do in AR-Net)
    backbone_widths: list[int] = field(
        default_factory=lambda: [32, 64, 128],
        metadata={"help": "Channels of each backbone's three convs, comma-separated."},
    )
    # stage 1: each backbone alone; stage 2: the policy; stage 3: backbones fine-tuned
    backbone: TrainConfig = field(default_factory=lambda: _stage(6, 32, 3e-3, 128))
    policy: TrainConfig = field(default_factory=lambda: _stage(12, 16, 1e-2, 256))
    finetune: TrainConfig = field(default_factory=lambda: _stage(3, 32, 1e-3, 128))
    # loss = (1 - w) CE + w expected FLOPs per video, in units of one full-resolution frame
    efficiency_weight: float = field(
        default=0.05, metadata={"help": "w in (1-w) CE + w FLOPs per video (unit: one full-res frame)."}
    )
    joint: bool = field(
        default=False, metadata={"help": "Stage 2 also trains the backbones (every backbone on every frame)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for data, initialisation and data order."})

    def stages(self) -> dict[str, TrainConfig]:
        return {"backbone": self.backbone, "policy": self.policy, "finetune": self.finetune}

    def validate(self) -> None:
        """Every check a run can make before it writes anything (`frugal video train` runs this
        before its --out directory is created, so a bad value never binds a directory)."""
        if self.data not in ("synthetic", "synthetic-nocue") and not Path(self.data).is_dir():
            raise FrugalError(f"--data must be 'synthetic', 'synthetic-nocue' or a folder of clips, got '{self.data}'")
        if self.n_train < 1 or self.n_test < 1:
            raise FrugalError(f"--clips and --test-clips must be >= 1, got {self.n_train} and {self.n_test}")
        if not 0 <= self.efficiency_weight < 1:
            raise FrugalError(f"--efficiency-weight must be in [0, 1), got {self.efficiency_weight}")
        if self.frames < 1 or min(t.epochs for t in self.stages().values()) < 0:
            raise FrugalError("--frames must be >= 1 and epochs >= 0")
        for stage in self.stages().values():
            stage.validate()
        if sorted(self.resolutions, reverse=True) != list(self.resolutions) or len(set(self.resolutions)) < 1:
            raise FrugalError(f"resolutions must be distinct and in decreasing order, got {self.resolutions}")
        if self.resolutions[0] > self.size or self.policy_res > self.size or min(self.resolutions) < 8:
            raise FrugalError(f"resolutions {self.resolutions} / policy {self.policy_res} must lie in 8..{self.size}")
        if not self.backbone_widths or min(self.backbone_widths) < 1:
            raise FrugalError(f"backbone widths must be positive channel counts, got {self.backbone_widths}")
