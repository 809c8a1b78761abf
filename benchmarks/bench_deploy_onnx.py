"""Deploy latency of a ticket exported to ONNX: onnxruntime against PyTorch eager, your own model and data.

For each seed: the user's own residual CNN (`tiny_resnet` below, passed as
`benchmarks/bench_deploy_onnx.py:tiny_resnet`) on the user's own arrays (scikit-learn digits
0-9 as 1x8x8 images in an .npz), `frugal tickets find` (2 levels at rate 0.5, 4 epochs, no
controls), then `frugal tickets export --format onnx` of level 2. The export times batch 1 and
batch 256 of the masked dense network in PyTorch eager and of the ONNX file in onnxruntime in
3 interleaved rounds (1 thread); the ratios below are its medians of per-round ratios, with
their ranges, and `onnx_max_abs_diff` its largest output difference on the test examples.

    python benchmarks/bench_deploy_onnx.py            # 2 seeds, a few minutes on 2 cores
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


class TinyResNet(nn.Module):
    def __init__(self, classes: int = 10, ch: int = 16):
        super().__init__()
        self.stem = nn.Conv2d(1, ch, 3, padding=1)
        self.blocks = nn.Sequential(Block(ch), Block(ch))
        self.head = nn.Linear(ch * 4 * 4, classes)

    def forward(self, x):
        x = self.blocks(torch.relu(self.stem(x)))
        return self.head(torch.flatten(nn.functional.max_pool2d(x, 2), 1))


def tiny_resnet():
    return TinyResNet()


def digits_npz(path: Path) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target
    i = np.random.default_rng(0).permutation(len(y))
    x, y = x[i], y[i]
    np.savez(path, x_train=x[:1400], y_train=y[:1400], x_test=x[1400:], y_test=y[1400:])
    return path


def frugal(*args) -> dict:
    from frugalml.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as e:
        if e.code:
            raise RuntimeError(f"frugal {' '.join(map(str, args))} exited {e.code}") from None


def one_seed(seed: int, npz: Path, root: Path) -> dict:
    here = Path(__file__).resolve()
    run = root / f"run{seed}"
    frugal(
        "tickets",
        "find",
        "--model",
        f"{here}:tiny_resnet",
        "--data",
        npz,
        "--levels",
        "2",
        "--rate",
        "0.5",
        "--epochs",
        "4",
        "--controls",
        "none",
        "--seeds",
        f"{seed}-{seed}",
        "--out",
        run,
    )
    out = root / f"export{seed}"
    frugal("tickets", "export", "--run", run / "level_2", "--format", "onnx", "--out", out)
    res = json.loads((out / "result.json").read_text())
    row = {
        "seed": seed,
        "remaining": res["remaining"],
        "onnx_max_abs_diff": res["onnx_max_abs_diff"],
        "accuracy_dense": res["accuracy_dense"],
        "accuracy_onnx": res["accuracy_onnx"],
        "bytes_dense": res["bytes_dense"],
        "bytes_onnx": res["bytes_onnx"],
    }
    for b, lat in res["latency"].items():
        r = lat["ratios"]["onnxruntime/dense"]
        row[f"batch{b}"] = {
            "dense_us": lat["dense_s"] * 1e6,
            "onnxruntime_us": lat["onnxruntime_s"] * 1e6,
            "onnx_over_eager": r["ratio"],
            "rounds_range": r["spread"],
        }
    return row


def main() -> None:
    from frugalml.report.bench import save_result

    torch.set_num_threads(1)
    seeds = [0, 1]
    with tempfile.TemporaryDirectory() as tmp:
        npz = digits_npz(Path(tmp) / "digits.npz")
        rows = [one_seed(s, npz, Path(tmp)) for s in seeds]
    summary = {}
    for b in ("1", "256"):
        ratios = [r[f"batch{b}"]["onnx_over_eager"] for r in rows]
        summary[f"batch{b}"] = {
            "onnx_over_eager_mean": statistics.mean(ratios),
            "onnx_over_eager_min": min(ratios),
            "onnx_over_eager_max": max(ratios),
        }
    payload = {
        "model": "TinyResNet (benchmarks/bench_deploy_onnx.py:tiny_resnet), user npz of digits 1x8x8",
        "seeds": seeds,
        "batch_sizes": [1, 256],
        "rows": rows,
        "summary": summary,
        "worst_onnx_max_abs_diff": max(r["onnx_max_abs_diff"] for r in rows),
    }
    for r in rows:
        print(
            f"seed {r['seed']}: {100 * r['remaining']:.1f}% remaining, "
            f"max |onnx - torch| {r['onnx_max_abs_diff']:.1e}, "
            f"accuracy {r['accuracy_dense']:.3f} (torch) {r['accuracy_onnx']:.3f} (onnx); onnxruntime/eager "
            f"batch 1 {r['batch1']['onnx_over_eager']:.3f}x, batch 256 {r['batch256']['onnx_over_eager']:.3f}x"
        )
    print(json.dumps(summary, indent=1))
    save_result("deploy_onnx", payload)


if __name__ == "__main__":
    sys.exit(main())
