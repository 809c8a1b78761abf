"""What a lottery-ticket run is: its `TicketConfig` (with the training it embeds) and rewind points.

Torch-free, so `frugal tickets` can build its options from the dataclass without loading torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from frugalml.errors import FrugalError
from frugalml.trainconfig import TrainConfig

CONTROLS = ("reinit", "random")
STRUCTURES = ("none", "channels", "heads")
RETRAINS = ("rewind", "finetune", "lr-rewind")


def check_rate(rate: float, what: str = "pruning rate") -> None:
    if not (isinstance(rate, (int, float)) and 0 < rate < 1):
        raise FrugalError(f"{what} must be in (0, 1), got {rate}")


def ticket_training(**changes) -> TrainConfig:
    """The training every level of a ticket run does by default, with `changes` applied."""
    # cosine gives a steady final accuracy to compare levels by
    return TrainConfig(**({"epochs": 30, "batch_size": 64, "lr": 0.05, "schedule": "cosine"} | changes))


@dataclass
class TicketConfig:
    model: str = field(
        default="mlp",
        metadata={
            "help": "Model registry name (mlp, conv2, conv4, ...), or your own: module:factory or file.py:factory."
        },
    )
    data: str = field(
        default="mnist1d",
        metadata={
            "help": "Task: NAME[:key=value,...], e.g. digits:classes=0-4, or your own data: "
            "a .npz/.pt file or module:loader."
        },
    )
    levels: int = field(default=12, metadata={"help": "Pruning levels after the dense level 0."})
    rate: float = field(default=0.2, metadata={"help": "Fraction of remaining weights pruned per level, in (0, 1)."})
    # layerwise only; None means rate / 2 (resolved and recorded)
    output_rate: float | None = field(
        default=None, metadata={"help": "Output layer's rate (layerwise; default rate / 2, recorded)."}
    )
    strategy: str = field(default="layerwise", metadata={"help": "layerwise | global."})
    rewind: str = field(default="0", metadata={"help": "Rewind point: 0, <N>it or <N>ep."})
    seeds: int = field(default=2, metadata={"help": "Number of seeds (model init and data order)."})
    first_seed: int = field(default=0, metadata={"help": "First seed."})
    controls: list[str] = field(
        default_factory=lambda: list(CONTROLS), metadata={"help": "Controls per level: reinit,random (or 'none')."}
    )
    structure: str = field(
        default="none",
        metadata={
            "help": "none (single weights) | channels (whole conv channels, Linear units and attention heads, "
            "removed for real on export) | heads (attention heads only)."
        },
    )
    retrain: str = field(
        default="rewind",
        metadata={
            "help": "After each pruning: rewind (weights back to the rewind point, full schedule) | finetune "
            "(keep the trained weights, same epochs at the schedule's final LR; lr/100 after cosine) | lr-rewind "
            "(keep the trained weights, full schedule from its start: Renda et al. 2020)."
        },
    )
    # every level trains this schedule; its seed is replaced by each ticket's seed
    train: TrainConfig = field(default_factory=ticket_training)

    def validate(self) -> TicketConfig:
        check_rate(self.rate)
        if self.strategy not in ("layerwise", "global"):
            raise FrugalError(f"unknown pruning strategy '{self.strategy}' (layerwise, global)")
        if self.output_rate is None and self.strategy == "layerwise":
            self.output_rate = self.rate / 2
        if self.output_rate is not None:
            check_rate(self.output_rate, "output rate")
        if self.levels < 0 or self.levels > 60:
            raise FrugalError(f"levels must be between 0 and 60, got {self.levels}")
        if self.seeds < 1:
            raise FrugalError(f"seeds must be >= 1, got {self.seeds}")
        bad = [c for c in self.controls if c not in CONTROLS]
        if bad:
            raise FrugalError(f"unknown control '{bad[0]}' (known: {', '.join(CONTROLS)})")
        if self.structure not in STRUCTURES:
            raise FrugalError(f"unknown structure '{self.structure}' ({', '.join(STRUCTURES)})")
        if self.retrain not in RETRAINS:
            raise FrugalError(f"unknown retrain '{self.retrain}' ({', '.join(RETRAINS)})")
        parse_rewind(self.rewind)
        self.train.validate()
        if self.train.epochs < 1:
            raise FrugalError(f"--epochs must be >= 1 (a ticket prunes trained weights), got {self.train.epochs}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict, where: str = "ticket config") -> TicketConfig:
        from frugalml.report.cliopts import config_from_dict

        return config_from_dict(cls, record, where)

    def finetune_training(self) -> TrainConfig:
        """The training of a fine-tuned level: same epochs, constant LR at the schedule's final value."""
        from dataclasses import replace

        final = self.train.lr if self.train.schedule == "constant" else self.train.lr / 100  # cosine ends at 0
        return replace(self.train, lr=final, schedule="constant")

    def keeps_weights(self) -> bool:
        """Whether a pruned level starts from the previous level's trained weights (finetune, lr-rewind)."""
        return self.retrain in ("finetune", "lr-rewind")

    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def rewind_iteration(self, n_train: int) -> int:
        n, unit = parse_rewind(self.rewind)
        steps = math.ceil(n_train / self.train.batch_size)
        k = n * steps if unit == "ep" else n
        if k > steps * self.train.epochs:
            raise FrugalError(
                f"rewind point {self.rewind} is past the end of training ({steps * self.train.epochs} iterations)"
            )
        return k


def parse_rewind(text: str) -> tuple[int, str]:
    text = str(text).strip().lower()
    if text == "0":
        return 0, "it"
    for unit in ("it", "ep"):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]), unit
    raise FrugalError(f"malformed rewind point '{text}': use 0, <N>it (iterations) or <N>ep (epochs)")
