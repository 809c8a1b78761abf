"""The `Dataset` container every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from frugalml.errors import FrugalError


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    info: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
            f"input={self.input_shape}, classes={self.num_classes})"
        )

    def subset_classes(self, classes, relabel: bool = True) -> Dataset:
        """Keep only `classes`; relabel them 0..k-1 (in the order given) if `relabel`."""
        classes = list(classes)
        bad = [c for c in classes if not 0 <= c < self.num_classes]
        if bad or not classes:
            raise FrugalError(f"classes {bad or classes} not in 0..{self.num_classes - 1}")
        lookup = torch.full((self.num_classes,), -1, dtype=torch.long)
        for i, c in enumerate(classes):
            lookup[c] = i if relabel else c

        def pick(x, y):
            keep = lookup[y] >= 0
            return x[keep], lookup[y[keep]]

        xtr, ytr = pick(self.x_train, self.y_train)
        xte, yte = pick(self.x_test, self.y_test)
        name = f"{self.name}[{','.join(map(str, classes))}]"
        n = len(classes) if relabel else self.num_classes
        return Dataset(name, xtr, ytr, xte, yte, n, dict(self.info, classes=classes))
