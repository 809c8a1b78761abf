"""ONNX export of any network, checked in onnxruntime, and its deploy latency measured.

    from frugalml.models import deploy
    path = deploy.export_onnx(model, example, "model.onnx")        # dynamic batch axis
    diff = deploy.check_onnx(path, model, [x1, x256])              # max |onnx - torch| over the inputs
    lat = deploy.deploy_latency({"dense": dense, "export": model}, path, {1: x1, 256: x256})
    lat["1"]["ratios"]["onnxruntime/dense"]  # {"ratio", "spread": [lo, hi], "within_spread"}

The exporter is torch's TorchScript-based one (`dynamo=False`): it runs offline with no extra
package and handles every network frugalml ships. An operator it cannot translate is one
`FrugalError` line naming it; the file is written to a temporary name and renamed, so a failed
export leaves nothing behind. onnx and onnxruntime are the optional extra `frugalml[deploy]`,
imported on first use.
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
from pathlib import Path

import torch
from torch import nn

from frugalml.errors import FrugalError

OPSET = 17
INSTALL = "pip install 'frugalml[deploy]' (onnx>=1.15, onnxruntime>=1.17)"


def require():
    """(onnx, onnxruntime), or a FrugalError saying how to install them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise FrugalError(f"ONNX export needs {e.name}: {INSTALL}") from None
    return onnx, onnxruntime


@contextlib.contextmanager
def _quiet_fds():
    """Silence file descriptors 1 and 2: the exporter prints its whole graph from C++ when it fails."""
    import tempfile

    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    op = re.search(r"operator '([^']+)'", text)
    if op:
        return f"the ONNX exporter cannot handle operator {op.group(1)} (opset {OPSET}): {text}"
    return f"the ONNX exporter failed: {type(e).__name__}: {text}"


def export_onnx(
    model: nn.Module,
    example: torch.Tensor | tuple[torch.Tensor, ...],
    path: str | Path,
    input_names: tuple[str, ...] = ("x",),
    output_names: tuple[str, ...] = ("logits",),
) -> Path:
    """Write `model` (eval mode) as ONNX at `path`, every input's and output's first axis (the
    batch) dynamic; atomically. `example`: one input tensor, or a tuple for a model of several."""
    import warnings

    require()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    model = model.eval()
    args = example if isinstance(example, tuple) else (example,)
    axes = {name: {0: "batch"} for name in (*input_names, *output_names)}
    try:
        with warnings.catch_warnings(), _quiet_fds(), torch.no_grad():
            warnings.simplefilter("ignore")  # "legacy TorchScript-based ONNX export" deprecation
            torch.onnx.export(
                model,
                args,
                str(tmp),
                dynamo=False,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes=axes,
                opset_version=OPSET,
            )
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise FrugalError(f"{_reason(e)} ({type(model).__name__})") from None
    os.replace(tmp, path)
    return path


def session(path: str | Path, threads: int = 1):
    """An onnxruntime CPU session of `path` with `threads` intra-op threads."""
    _, ort = require()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxModule:
    """Call an ONNX file like a module: `OnnxModule(path)(x) -> torch.Tensor`; a graph of several
    inputs takes them in order, one of several outputs returns a tuple."""

    def __init__(self, path: str | Path, threads: int = 1):
        self.path = Path(path)
        self.session = session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *xs: torch.Tensor):
        feed = {n: x.detach().cpu().numpy() for n, x in zip(self.input_names, xs)}
        outs = [torch.from_numpy(o) for o in self.session.run(None, feed)]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def __repr__(self) -> str:
        return f"OnnxModule({str(self.path)!r})"


def _flat(y) -> list[torch.Tensor]:
    return list(y) if isinstance(y, (tuple, list)) else [y]


@torch.no_grad()
def check_onnx(path: str | Path, model: nn.Module, inputs: list) -> float:
    """Largest |onnxruntime - PyTorch| over every output element of every input in `inputs`
    (each a tensor, or a tuple of tensors for a model of several inputs)."""
    run = OnnxModule(path)
    model.eval()
    worst = 0.0
    for x in inputs:
        xs = x if isinstance(x, tuple) else (x,)
        for a, b in zip(_flat(run(*xs)), _flat(model(*xs))):
            worst = max(worst, float((a - b).abs().max()))
    return worst


def deploy_latency(
    models: dict[str, nn.Module], onnx_path: str | Path, inputs: dict[int, torch.Tensor], rounds: int = 3, **measure
) -> dict:
    """Per batch size: each PyTorch model (eager) and the ONNX file in onnxruntime (`onnxruntime`),
    timed in `rounds` interleaved rounds (`compare_latency`, order rotated, 1 thread by default).
    Per runner: the median of its round medians (`<name>_s`) and their range (`<name>_spread_s`).
    Per pair, later over earlier in that order (`ratios["onnxruntime/dense"]`, ...): the median of
    the per-round ratios, their range as `spread`, and `within_spread` when that range holds 1."""
    import itertools

    from frugalml.cost.latency import compare_latency

    measure = {"threads": 1, "min_run_time": 0.2, "min_calls": 10} | measure
    runners = dict(models) | {"onnxruntime": OnnxModule(onnx_path, threads=measure["threads"])}
    out = {}
    for b, x in inputs.items():
        lat = compare_latency(runners, x, rounds=rounds, **measure)
        row: dict = {}
        for name, runs in lat.items():
            meds = [r.median_s for r in runs]
            row[f"{name}_s"] = statistics.median(meds)
            row[f"{name}_spread_s"] = [min(meds), max(meds)]
        row["ratios"] = {}
        for den, num in itertools.combinations(runners, 2):
            per_round = [a.median_s / b.median_s for a, b in zip(lat[num], lat[den])]
            lo, hi = min(per_round), max(per_round)
            row["ratios"][f"{num}/{den}"] = {
                "ratio": statistics.median(per_round),
                "spread": [lo, hi],
                "within_spread": lo <= 1 <= hi,
            }
        out[str(b)] = row
    return out


def batch_of(x, n: int):
    """`n` examples from `x` (repeated if it holds fewer), for timing at batch size `n`; a tuple
    of tensors gives a tuple, the same rows of each."""
    if isinstance(x, tuple):
        return tuple(batch_of(t, n) for t in x)
    reps = -(-n // len(x))
    return x.repeat(reps, *([1] * (x.dim() - 1)))[:n].contiguous() if reps > 1 else x[:n].contiguous()


def onnx_report(
    model: nn.Module,
    path: str | Path,
    inputs: dict[int, torch.Tensor],
    reference: tuple[str, nn.Module] | None = None,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    measure: bool = True,
    rounds: int = 3,
    input_names: tuple[str, ...] = ("x",),
    output_names: tuple[str, ...] = ("logits",),
) -> dict:
    """Export `model` to `path` and measure it: agreement with PyTorch on `inputs` (batch size ->
    examples) and the test examples, size on disk, test accuracy in onnxruntime (`test` = (x, y) of
    a classifier), and with `measure`, latency per batch size (`deploy_latency`) of the `reference`
    model (name, module: the dense one it was made from) and `model` in PyTorch eager beside onnxruntime."""
    path = export_onnx(model, inputs[min(inputs)], path, input_names, output_names)
    checked = [*inputs.values()] + ([test[0]] if test is not None else [])
    res = {
        "bytes_onnx": path.stat().st_size,
        "onnx_max_abs_diff": check_onnx(path, model, checked),
        "onnx_checked_on": f"batches of {', '.join(map(str, inputs))}"
        + (f" and {len(test[0])} test examples" if test is not None else ""),
    }
    if test is not None:
        with torch.no_grad():
            logits = OnnxModule(path)(test[0])
        if isinstance(logits, torch.Tensor) and logits.dim() == 2 and logits.shape[0] == len(test[1]):  # a classifier
            res["accuracy_onnx"] = float((logits.argmax(-1) == test[1]).float().mean())
    if measure:
        eager = ({reference[0]: reference[1]} if reference else {}) | {"export": model}
        res["latency"] = deploy_latency(eager, path, inputs, rounds=rounds)
        res["latency_note"] = (
            f"measured: median of {rounds} interleaved rounds (each a torch.utils.benchmark median), "
            "1 thread, this machine"
        )
    return res
