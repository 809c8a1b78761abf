"""What one `frugalml.train.fit` run computes, as a dataclass techniques embed in their own configs.

Kept apart from `frugalml.train` so that command-line modules can build options from it
without importing torch (`frugal --help` stays fast).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from frugalml.errors import FrugalError


@dataclass
class TrainConfig:
    epochs: int = field(default=10, metadata={"help": "Training epochs."})
    batch_size: int = field(default=64, metadata={"help": "Mini-batch size (examples per step)."})
    lr: float = field(default=0.05, metadata={"help": "Learning rate."})
    optimizer: str = field(default="sgd", metadata={"help": "sgd | adam."})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum."})
    weight_decay: float = field(default=0.0, metadata={"help": "Weight decay."})
    schedule: str = field(default="constant", metadata={"help": "constant | cosine."})
    # data order and dropout; model init is the caller's (seed it before building)
    seed: int = field(default=0, metadata={"help": "Seed of the data order."})
    eval_batch_size: int = field(default=1024, metadata={"help": "Batch size of evaluation (examples)."})
    threads: int | None = field(default=None, metadata={"help": "Torch threads (default: torch's)."})
    # "cuda" uses a GPU when there is one; results on CPU are bit-reproducible
    device: str = field(default="cpu", metadata={"help": "Torch device: cpu, cuda or cuda:N."})

    def validate(self) -> None:
        if self.epochs < 0 or self.batch_size < 1:
            raise FrugalError(f"epochs must be >= 0 and batch size >= 1 (got {self.epochs}, {self.batch_size})")
        if not self.lr > 0:
            raise FrugalError(f"learning rate must be positive, got {self.lr}")
        if self.optimizer not in ("sgd", "adam"):
            raise FrugalError(f"unknown optimizer '{self.optimizer}' (sgd, adam)")
        if self.schedule not in ("constant", "cosine"):
            raise FrugalError(f"unknown schedule '{self.schedule}' (constant, cosine)")
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise FrugalError(f"device '{self.device}' asked for, but no CUDA GPU is available here")
