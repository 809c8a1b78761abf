"""Top-view PNG of a scene coloured by class (predicted, and ground truth beside it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from frugalml.report.plots import save_figure

# one colour per class of frugalml.data.pointcloud.CLASSES
PALETTE = ["#a0a0a0", "#4b004b", "#ffc800", "#8c564b", "#ff0000", "#1e1eff", "#00c8c8", "#e377c2", "#00af00"]


def render_top_view(
    points: np.ndarray,
    panels: dict[str, np.ndarray],
    classes: list[str],
    path: str | Path,
    title: str = "",
    extent: float | None = None,
) -> Path:
    """Scatter x/y of `points` once per panel (name -> per-point class ids), saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    path = Path(path)
    n = max(len(panels), 1)
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 6.4), squeeze=False)
    colors = np.array([matplotlib.colors.to_rgb(c) for c in PALETTE] + [(0.6, 0.6, 0.6)])
    for ax, (name, labels) in zip(axes[0], panels.items()):
        lab = np.where((labels >= 0) & (labels < len(PALETTE)), labels, len(PALETTE))
        order = np.argsort(points[:, 2]) if len(points) else np.zeros(0, dtype=int)  # high points drawn on top
        ax.scatter(points[order, 0], points[order, 1], c=colors[lab[order]], s=1.5, linewidths=0)
        ax.set_title(name)
        ax.set_aspect("equal")
        if extent:
            ax.set_xlim(-extent, extent)
            ax.set_ylim(-extent, extent)
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
        if not len(points):
            ax.text(0.5, 0.5, "empty scene", ha="center", transform=ax.transAxes)
    handles = [Patch(color=PALETTE[i], label=c) for i, c in enumerate(classes[: len(PALETTE)])]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save_figure(fig, path, dpi=110)
    return path
