"""PNG plots: stacked energy per layer, dataflow comparison bars (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

from frugalml.report.plots import save_figure

COLORS = {"dram": "#8c2d04", "glb": "#d94801", "array": "#fd8d3c", "rf": "#6baed6", "mac": "#08519c"}
LEVELS = ("dram", "glb", "array", "rf", "mac")


def _save(fig, path) -> Path:
    return save_figure(fig, path, dpi=120, bbox_inches="tight")


def energy_per_layer(result: dict, path, title: str | None = None) -> Path:
    """Stacked bars: energy per MAC of each layer, split by level (from ModelResult.to_dict())."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = result["layers"]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(layers) + 2), 4))
    bottom = [0.0] * len(layers)
    names = [r["name"] for r in layers]
    for lv in LEVELS:
        vals = [r["energy"][lv] / r["macs"] for r in layers]
        ax.bar(range(len(layers)), vals, bottom=bottom, color=COLORS[lv], label=lv)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xticks(range(len(layers)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"energy per MAC ({result['energy_unit']})")
    ax.set_title(title or f"{result['dataflow']} on {result['arch']}" + (" (sparse)" if result["sparse"] else ""))
    ax.legend(fontsize=8)
    return _save(fig, path)


def dataflow_bars(dataflows: dict, path, title: str = "dataflow comparison", unit: str = "1 = one MAC") -> Path:
    """Grouped stacked bars: CONV and FC energy per MAC of each dataflow, split by level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dataflows)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=False)
    for ax, part in zip(axes, ("conv", "fc"), strict=True):
        bottom = [0.0] * len(names)
        for lv in LEVELS:
            vals = []
            for n in names:
                by = dataflows[n].get(f"{part}_energy_by_level") or {}
                macs = by.get("total", 0) / dataflows[n][f"{part}_energy_per_mac"] if by.get("total") else 0
                vals.append(by.get(lv, 0) / macs if macs else 0)
            ax.bar(names, vals, bottom=bottom, color=COLORS[lv], label=lv)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_title(f"{part.upper()} layers")
        ax.set_ylabel(f"energy per MAC ({unit})")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)
