"""Generated sequence-to-sequence tasks on token strings (no download).

Tokens: 0 = PAD, 1 = BOS, 2 = EOS, 3.. = symbols. `x` is the source followed by EOS,
`y` the target followed by EOS, both right-padded with PAD to `max_len + 1`.

- `seq2seq-reverse`: the target is the source reversed.
- `seq2seq-sort`: the target is the source sorted (a harder, order-free mapping).
"""

from __future__ import annotations

import numpy as np
import torch

from frugalml.data import register
from frugalml.data.base import Dataset
from frugalml.errors import FrugalError

PAD, BOS, EOS, FIRST = 0, 1, 2, 3


def _make(task: str, num_samples: int, min_len: int, max_len: int, symbols: int, seed: int, test_fraction: float):
    if not 1 <= min_len <= max_len:
        raise FrugalError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    if symbols < 2 or num_samples < 10:
        raise FrugalError(f"need at least 2 symbols and 10 samples, got {symbols}, {num_samples}")
    rng = np.random.default_rng(seed)
    x = np.full((num_samples, max_len + 1), PAD, dtype=np.int64)
    y = np.full((num_samples, max_len + 1), PAD, dtype=np.int64)
    for i in range(num_samples):
        n = int(rng.integers(min_len, max_len + 1))
        s = rng.integers(FIRST, FIRST + symbols, size=n)
        t = s[::-1] if task == "reverse" else np.sort(s)
        x[i, :n], x[i, n] = s, EOS
        y[i, :n], y[i, n] = t, EOS
    n_test = int(round(num_samples * test_fraction))
    t = torch.from_numpy
    info = {"task": task, "vocab": FIRST + symbols, "max_len": max_len + 1, "pad": PAD, "bos": BOS, "eos": EOS}
    return Dataset(f"seq2seq-{task}", t(x[n_test:]), t(y[n_test:]), t(x[:n_test]), t(y[:n_test]), FIRST + symbols, info)


@register("seq2seq-reverse")
def reverse(
    num_samples: int = 4000,
    min_len: int = 3,
    max_len: int = 8,
    symbols: int = 10,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> Dataset:
    """Reverse a string of `min_len`..`max_len` symbols."""
    return _make("reverse", num_samples, min_len, max_len, symbols, seed, test_fraction)


@register("seq2seq-sort")
def sort(
    num_samples: int = 4000,
    min_len: int = 3,
    max_len: int = 8,
    symbols: int = 10,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> Dataset:
    """Sort a string of `min_len`..`max_len` symbols."""
    return _make("sort", num_samples, min_len, max_len, symbols, seed, test_fraction)
