"""The four dataflows of Eyeriss ISCA 2016, as constraints on a mapping.

Each says which tensors the PE's register file may hold, which loop dimensions may be
spread over the array's rows (Y) and columns (X), which may iterate inside a PE, and
which must sit in the RF whole.

* rs  - row stationary (Eyeriss): a PE runs a 1-D row convolution; filter rows (R) go
        down the columns and output rows (P) across, so inputs are reused diagonally,
        weights horizontally and partial sums accumulate vertically. The RF holds a filter
        row (all of S) and may interleave channels, filters and images.
* ws  - weight stationary (nn-X, NeuFlow, TPU-like): weights stay in the RF; inputs are
        broadcast along rows, partial sums reduced down columns (C, R, S on Y; M on X).
* os  - output stationary (ShiDianNao, OS-A/C): each PE accumulates its own outputs in the
        RF; weights are broadcast, inputs forwarded between neighbours.
* nlr - no local reuse (DianNao): no RF; C on Y and M on X; everything streams from the
        buffer, partial sums reduced spatially.
"""

from __future__ import annotations

from dataclasses import dataclass

from frugalml.accel.model import I_, O_, W_, C, G, M, N, P, Q, R, S
from frugalml.errors import FrugalError


@dataclass(frozen=True)
class Dataflow:
    name: str
    title: str
    rf_tensors: frozenset
    rf_dims: tuple[int, ...]
    rf_full: tuple[int, ...]
    y_dims: tuple[int, ...]
    x_dims: tuple[int, ...]

    def keeps(self, t: int) -> bool:
        return t in self.rf_tensors


DATAFLOWS = {
    "rs": Dataflow("rs", "row stationary", frozenset({W_, I_, O_}), (N, M, C, Q, S, G), (S,), (R, C, M), (P, N, M, G)),
    "ws": Dataflow("ws", "weight stationary", frozenset({W_}), (M, C, R, S, N, P, Q, G), (), (C, R, S), (M, G)),
    "os": Dataflow("os", "output stationary", frozenset({O_}), (N, M, C, P, Q, R, S, G), (), (P, M, N), (Q, P, N, G)),
    "nlr": Dataflow("nlr", "no local reuse", frozenset(), (), (), (C, R, S), (M, G)),
}


def get(name: str) -> Dataflow:
    key = name.lower()
    if key not in DATAFLOWS:
        raise FrugalError(f"unknown dataflow '{name}' (known: {', '.join(DATAFLOWS)})")
    return DATAFLOWS[key]
