"""`frugal demo` step: AlexNet's CONV layers on modelled accelerators (a few seconds)."""

from __future__ import annotations

from pathlib import Path


def demo(out: Path, quick: bool, console) -> list[dict]:
    from frugalml.accel import analyze, load_arch, model_layers
    from frugalml.accel.plots import energy_per_layer
    from frugalml.files import write_json
    from frugalml.report.console import demo_row

    out = Path(out)
    layers = [layer for layer in model_layers("alexnet-grouped", batch=4) if layer.kind == "conv"]
    kw = {"keep": 16, "max_arrays": 64, "starts_n": 4} if quick else {}  # a lighter search in quick mode
    isca = load_arch("isca16")
    nlr = analyze(layers, isca, "nlr", **kw).total()
    rs = analyze(layers, isca, "rs", **kw)
    v2 = load_arch("eyeriss-v2")
    dense = analyze(layers, v2, "rs", sparse=False, **kw).total()
    sparse = analyze(layers, v2, "rs", sparse=True, **kw).total()
    rs_d = rs.to_dict()
    plot = energy_per_layer(rs_d, out / "alexnet_rs_isca16.png", "AlexNet CONV batch 4: rs on isca16")
    write_json(
        out / "result.json",
        {
            "rs_isca16": rs_d,
            "nlr_isca16_total": nlr,
            "v2_dense_total": dense,
            "v2_sparse_total": sparse,
            "plot": str(plot),
        },
    )
    if console is not None:
        console.print(
            f"[bold]accel[/bold] AlexNet CONV1-5, batch 4 ({rs_d['total']['macs'] / 1e9:.2f} G MACs), modelled: "
            f"row stationary {rs_d['total']['energy_per_mac']:.2f} vs no local reuse {nlr['energy_per_mac']:.2f} "
            f"MAC-energies per MAC on the ISCA'16 setup; on an Eyeriss v2-like chip, skipping zero activations "
            f"({1 - sparse['macs_effective'] / sparse['macs']:.0%} of MACs) gives {sparse['energy_per_mac']:.2f} vs "
            f"{dense['energy_per_mac']:.2f} dense (optimistic: ideal skipping). Plot: {plot}"
        )
    unit = "energy/MAC (MAC units, modelled)"
    return [
        demo_row(
            "accel",
            "AlexNet CONV b4 isca16: no local reuse -> row stationary",
            unit,
            nlr["energy_per_mac"],
            rs_d["total"]["energy_per_mac"],
            "analytical reuse model, normalised energies",
        ),
        demo_row(
            "accel",
            "AlexNet CONV b4 eyeriss-v2: dense -> zero skipping",
            unit,
            dense["energy_per_mac"],
            sparse["energy_per_mac"],
            "ideal skipping of zero activations (random input)",
        ),
    ]
