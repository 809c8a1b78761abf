"""`frugal demo` step for analog training: digits on ECRAM-like devices vs digital SGD."""

from __future__ import annotations

from pathlib import Path


def demo(out: Path, quick: bool, console) -> list[dict]:
    import torch

    from frugalml.analog.run import AnalogRunConfig, analog_training, train
    from frugalml.report.console import demo_row

    cfg = AnalogRunConfig(
        data="digits",
        device="ecram",
        train=analog_training(epochs=1 if quick else 3),
        hidden=(16,) if quick else (32,),
    )
    threads = torch.get_num_threads()
    try:
        r = train(cfg, Path(out) / cfg.name(), progress=False)
    finally:
        torch.set_num_threads(threads)  # the runs use one thread; leave the demo as it was
    if console is not None:
        console.print(
            f"[bold]Analog[/bold] MLP on digits, {cfg.train.epochs} epochs on simulated ECRAM crossbars "
            f"(pulsed in-place SGD, BL={cfg.bl}): test accuracy {r['accuracy']:.3f} vs digital "
            f"{r['digital_accuracy']:.3f}; {r['pulses']:,.0f} device pulses; modelled energy "
            f"{r['energy_j']:.3g} J vs {r['digital_energy_j']:.3g} J for fp32 MACs"
        )
    return [
        demo_row(
            "analog",
            "digits MLP training: digital fp32 vs ECRAM crossbar",
            "energy (J, modelled)",
            r["digital_energy_j"],
            r["energy_j"],
            "analog: counted converter/read/pulse events; digital: MACs x 4.6 pJ",
        ),
        demo_row(
            "analog",
            "digits MLP training: digital fp32 vs ECRAM crossbar",
            "test accuracy",
            r["digital_accuracy"],
            r["accuracy"],
            f"{cfg.train.epochs} epochs, same init and data order",
        ),
    ]
