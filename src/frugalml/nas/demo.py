"""`frugal demo` step for nas: train a small CNN supernet once, specialise it for host-1t."""

from __future__ import annotations

from pathlib import Path


def demo(out: Path, quick: bool, console) -> list[dict]:
    from frugalml.nas import latency as lat
    from frugalml.nas.pipeline import latency_step, load_context, search_step
    from frugalml.nas.search import EvolutionConfig
    from frugalml.nas.supernet import SupernetConfig, load_supernet, supernet_training, train_supernet
    from frugalml.report.console import demo_row

    out = Path(out)
    run = out / "supernet"
    cfg = SupernetConfig(sampling="sandwich", quick=True, train=supernet_training(epochs=1 if quick else 6))
    train_supernet(cfg, run, track=False, progress=console is not None)
    m = latency_step(run, "host-1t", samples=16 if quick else 60, rounds=2, progress=False)
    space, net, _ = load_supernet(run)
    largest = space.largest()
    largest_ms = lat.measure(space, net, largest, "host-1t") * 1e3
    pred = lat.MLPPredictor.load(space, run / "latency" / "host-1t-mlp")
    budget = round(0.6 * pred.predict(largest), 3)
    evo = EvolutionConfig(population=10, parents=3, mutations=4, crossovers=3, iterations=2 if quick else 4)
    res = search_step(run, "host-1t", budget, evo, progress=False)
    _, _, _, train, _, test = load_context(run)
    sub = space.extract(net, largest)
    space.prepare(sub, train)
    largest_acc = space.evaluate(sub, test)
    if console is not None:
        console.print(
            f"[bold]nas[/bold]: supernet on MNIST-1D ({cfg.train.epochs} epoch(s)); latency predictor MAPE "
            f"{m['mlp']['mape_pct']:.1f}% (noise floor {m['noise_floor']['mape_pct']:.1f}%); under {budget} ms "
            f"found a sub-network at {res['measured_latency_ms']:.3f} ms measured (largest: {largest_ms:.3f} ms), "
            f"test accuracy {res['test_accuracy']:.3f} (largest: {largest_acc:.3f}), {res['evaluations']} "
            f"sub-networks evaluated in {res['search_seconds']:.1f} s without training any"
        )
    note = f"sub-network searched under {budget} ms on host-1t, weights shared with the supernet"
    return [
        demo_row(
            "nas",
            "largest vs searched sub-network",
            "latency ms (host-1t)",
            largest_ms,
            res["measured_latency_ms"],
            note,
        ),
        demo_row("nas", "largest vs searched sub-network", "MACs", space.macs(largest), res["macs"], note),
        demo_row("nas", "largest vs searched sub-network", "test accuracy", largest_acc, res["test_accuracy"], note),
    ]
