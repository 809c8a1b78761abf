"""PNG plots: the policy's choices over time (a frame strip) and accuracy vs GFLOPs."""

from __future__ import annotations

from pathlib import Path

from frugalml.report.plots import save_figure


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


COLOURS = ["#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]


def plot_choices(path, x, actions, informative, names, y=None, clips: int = 4) -> Path:
    """A frame strip per clip: each frame framed in the colour of the action taken on it."""
    plt = _plt()

    clips = min(clips, len(x))
    steps = x.shape[1]
    fig, axes = plt.subplots(clips, steps, figsize=(steps * 0.9, clips * 1.15), squeeze=False)
    for i in range(clips):
        for t in range(steps):
            ax = axes[i][t]
            frame = x[i, t].float().mean(0) if x.shape[2] != 3 else x[i, t].permute(1, 2, 0)
            ax.imshow(frame.numpy(), cmap="gray" if x.shape[2] != 3 else None)
            a = int(actions[i, t])
            colour = COLOURS[a] if a >= 0 else "white"
            for s in ax.spines.values():
                s.set_edgecolor(colour)
                s.set_linewidth(3)
            ax.set_xticks([])
            ax.set_yticks([])
            label = names[a] if a >= 0 else "-"
            if informative is not None and bool(informative[i, t]):
                label += " *"
            ax.set_title(label, fontsize=6)
        if y is not None:
            axes[i][0].set_ylabel(f"clip {i}\nclass {int(y[i])}", fontsize=7)
    fig.suptitle(
        "policy choices per frame (frame colour = action; * = informative frame; - = skipped over)", fontsize=8
    )
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return Path(path)


def plot_tradeoff(path, curves: dict, points: dict, title: str) -> Path:
    """Accuracy vs GFLOPs per video: `curves` {label: [(gflops, acc, acc_std)]}, `points` {label: (gflops, acc)}."""
    plt = _plt()

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (label, pts) in enumerate(curves.items()):
        pts = sorted(pts)
        ax.errorbar(
            [p[0] for p in pts],
            [p[1] for p in pts],
            yerr=[p[2] for p in pts],
            marker="o",
            capsize=3,
            color=COLOURS[i % len(COLOURS)],
            label=label,
        )
    markers = ["s", "^", "v", "D", "P", "X", "*"]
    for i, (label, (gf, acc)) in enumerate(points.items()):
        ax.scatter([gf], [acc], marker=markers[i % len(markers)], s=60, label=label, zorder=5)
    ax.set_xlabel("GFLOPs per video (counted)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return Path(path)


def plot_flops_vs_informative(path, per_run: dict) -> Path:
    """Mean GFLOPs per video against the number of informative frames in the clip."""
    plt = _plt()

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, (label, per) in enumerate(per_run.items()):
        ks = sorted(per, key=int)
        ax.plot(
            [int(k) for k in ks],
            [per[k]["gflops_per_video"] for k in ks],
            marker="o",
            label=label,
            color=COLOURS[i % len(COLOURS)],
        )
    ax.set_xlabel("informative frames in the clip (ground truth)")
    ax.set_ylabel("GFLOPs per video spent by the policy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return Path(path)
