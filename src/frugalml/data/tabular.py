"""Small classification sets: scikit-learn's digits and generated MNIST-1D."""

from __future__ import annotations

import numpy as np
import torch

from frugalml.data import register
from frugalml.data.base import Dataset


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    """A fixed, stratified split: the same seed always gives the same test set."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        test[idx[: int(round(len(idx) * test_fraction))]] = True
    return x[~test], y[~test], x[test], y[test]


@register("digits")
def digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """1,797 8x8 grey-scale digits bundled with scikit-learn, as (N, 1, 8, 8) in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    xtr, ytr, xte, yte = _split(x, y, test_fraction, seed)
    t = torch.from_numpy
    return Dataset("digits", t(xtr), t(ytr), t(xte), t(yte), 10, {"source": "sklearn"})


@register("mnist1d")
def mnist1d(num_samples: int = 5000, seed: int = 42, **generator_args) -> Dataset:
    """MNIST-1D (Greydanus 2020) generated in code: 40-sample 1-D signals, 10 classes.

    `generator_args` override the mnist1d generator settings (e.g. `shear_scale`,
    `corr_noise_scale`), which gives related-but-different tasks for transfer studies.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    for k, v in generator_args.items():
        if not hasattr(args, k):
            from frugalml.errors import FrugalError

            raise FrugalError(f"unknown mnist1d generator setting '{k}'")
        setattr(args, k, v)
    d = make_dataset(args)
    t = torch.from_numpy
    # The name identifies the generated task, so runs on different variants never mix.
    changed = {"num_samples": num_samples, "seed": seed} | generator_args
    changed = {k: v for k, v in changed.items() if k in generator_args or v != {"num_samples": 5000, "seed": 42}[k]}
    name = "mnist1d" + (f"[{','.join(f'{k}={v}' for k, v in sorted(changed.items()))}]" if changed else "")
    return Dataset(
        name,
        t(d["x"].astype(np.float32)),
        t(d["y"].astype(np.int64)),
        t(d["x_test"].astype(np.float32)),
        t(d["y_test"].astype(np.int64)),
        10,
        {"source": "mnist1d.make_dataset", "seed": seed, **generator_args},
    )
