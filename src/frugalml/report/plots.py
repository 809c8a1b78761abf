"""Plots as PNG files: the headless backend, atomic writes, figures closed after saving."""

from __future__ import annotations

import os
from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 110, **savefig_kwargs) -> Path:
    """Write `fig` as a PNG atomically (complete or absent), then close it."""
    from frugalml.files import atomic_save

    try:
        return atomic_save(path, lambda f: fig.savefig(f, format="png", dpi=dpi, **savefig_kwargs))
    finally:
        pyplot().close(fig)
