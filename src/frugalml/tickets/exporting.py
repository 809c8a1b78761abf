"""Export a trained ticket so that its sparsity saves something real.

- compact: a dense network with the structurally empty units removed. A hidden unit
  whose outgoing weights are all pruned is dropped; one whose incoming weights are all
  pruned outputs the constant relu(bias), which is folded into the next layer's bias and
  the unit dropped. Repeated until nothing changes, so the result computes exactly the
  same function. Other models: `frugalml.tickets.structured` (dependency graph, outputs checked).
- sparse: the compact network (or the network itself, for models that are not MLPs) with
  every Linear layer stored as CSR (values + column indices, int16 where they fit). At
  load, each layer runs whichever kernel was measured faster here at export time, dense
  or CSR, and the choice is recorded: sparse kernels are often slower at small sizes.
  The per-layer verdict and both timings are in the result (`layers`) and printed.
- onnx: the compact network where compact applies (else the ticket's masked dense network)
  as `model.onnx` (dynamic batch axis, `frugalml.models.deploy`), checked in onnxruntime
  against PyTorch (`onnx_max_abs_diff`) and timed there next to PyTorch eager. The PyTorch
  weights are written beside it, so `frugalml.load(dir)` gives the module back.

Every export is written into a temporary directory that replaces `out` only when complete.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from frugalml.cost.latency import ratio_spread
from frugalml.errors import FrugalError
from frugalml.files import atomic_save, read_json, write_json
from frugalml.tickets.imp import MASK, WEIGHTS, build_model, load_ticket
from frugalml.tickets.masks import Mask

FORMATS = ("compact", "sparse", "onnx")


def compact(model: nn.Module, example=None, base: dict | None = None) -> tuple[nn.Module, dict]:
    """`model` with the units and channels it no longer uses removed, computing the same function.

    The frugalml MLP folds dead units into the next bias; any other model goes through the
    dependency-graph shrinker (`frugalml.tickets.structured.compact`), which needs `example`
    to trace it and `base` ({"model", "kwargs"}) so `load_export` can rebuild it."""
    from frugalml.tickets import structured

    return structured.compact(model, example, base)


class SparseLinear(nn.Module):
    """y = x W^T + b with W held as CSR; `kernel` picks the CSR or a dense matmul."""

    def __init__(self, weight_csr: torch.Tensor, bias: torch.Tensor | None, kernel: str = "csr"):
        super().__init__()
        self.weight_csr = weight_csr
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.kernel = kernel
        self.weight_dense = weight_csr.to_dense() if kernel == "dense" else None
        self.out_features, self.in_features = weight_csr.shape

    def forward(self, x):
        if self.kernel == "dense":
            return nn.functional.linear(x, self.weight_dense, self.bias)
        b = self.bias if self.bias is not None else torch.zeros(self.out_features)
        return torch.addmm(b.unsqueeze(1), self.weight_csr, x.t()).t()


def _csr(weight: torch.Tensor) -> torch.Tensor:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        return weight.detach().to_sparse_csr()


def to_sparse(
    model: nn.Module, example: torch.Tensor | None = None, timings: dict | None = None
) -> tuple[nn.Module, dict]:
    """Swap every nn.Linear for a SparseLinear; with `example`, pick each layer's faster kernel
    (and, given a dict `timings`, put each layer's measured {"csr_s", "dense_s"} there)."""
    import copy

    from frugalml.cost.latency import compare_latency

    model = copy.deepcopy(model).eval()
    kernels = {}
    acts = {}
    if example is not None:  # record each Linear's input to time both kernels on real shapes
        hooks = [
            m.register_forward_hook(lambda mod, inp, out, n=n: acts.__setitem__(n, inp[0].detach()))
            for n, m in model.named_modules()
            if isinstance(m, nn.Linear)
        ]
        with torch.no_grad():
            model(example)
        for h in hooks:
            h.remove()
    for name, mod in list(model.named_modules()):
        if not isinstance(mod, nn.Linear):
            continue
        csr = _csr(mod.weight)
        bias = None if mod.bias is None else mod.bias.detach().clone()
        kernel = "csr"
        if name in acts:
            pair = {k: SparseLinear(csr, bias, k) for k in ("csr", "dense")}
            lat = compare_latency(pair, acts[name], rounds=1, order="fixed", threads=1, min_run_time=0.2)
            kernel = "csr" if lat["csr"][0].median_s < lat["dense"][0].median_s else "dense"
            if timings is not None:
                timings[name] = {"csr_s": lat["csr"][0].median_s, "dense_s": lat["dense"][0].median_s}
        kernels[name] = kernel
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, SparseLinear(csr, bias, kernel))
    return model, kernels


def _sparse_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, SparseLinear):
            w = mod.weight_csr
            col = w.col_indices()
            out[f"{name}.weight.crow"] = w.crow_indices().to(torch.int32)
            out[f"{name}.weight.col"] = col.to(torch.int16 if mod.in_features <= 32767 else torch.int32)
            out[f"{name}.weight.values"] = w.values().contiguous()
            out[f"{name}.weight.shape"] = torch.tensor(list(w.shape), dtype=torch.int32)
            if mod.bias is not None:
                out[f"{name}.bias"] = mod.bias.detach().contiguous()
    sparse_names = {n for n, m in model.named_modules() if isinstance(m, SparseLinear)}
    for k, v in model.state_dict().items():
        owner = k.rpartition(".")[0]
        if owner not in sparse_names:
            out[k] = v.detach().contiguous().clone()
    return out


def save_export(model: nn.Module, arch: dict, out: Path) -> Path:
    from safetensors.torch import save

    tensors = (
        _sparse_tensors(model)
        if arch["format"] == "sparse"
        else {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "model.safetensors"
    atomic_save(path, lambda f: f.write(save(tensors)))
    write_json(out / "export.json", arch)
    return path


def load_export(out: str | Path) -> nn.Module:
    """Rebuild an exported model from `export.json` + `model.safetensors` (no pickle)."""
    from safetensors.torch import load_file

    from frugalml import models

    out = Path(out)
    arch = read_json(out / "export.json")
    state = load_file(str(out / "model.safetensors"))
    model = models.get(arch["model"], **arch["kwargs"]).eval()
    if arch.get("pruning"):
        from frugalml.tickets import structured

        model = structured.rebuild(model, arch)
    if arch["format"] in ("compact", "onnx"):
        model.load_state_dict(state)
        return model
    for name, kernel in arch["kernels"].items():
        shape = tuple(state.pop(f"{name}.weight.shape").tolist())
        crow = state.pop(f"{name}.weight.crow")
        col = state.pop(f"{name}.weight.col").to(torch.int32)
        values = state.pop(f"{name}.weight.values")
        bias = state.pop(f"{name}.bias", None)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            csr = torch.sparse_csr_tensor(crow, col, values, size=shape)
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, SparseLinear(csr, bias, kernel))
    model.load_state_dict(state, strict=False)
    return model


def export(
    ticket: str | Path, fmt: str, out: str | Path | None = None, batch_sizes=(1, 256), measure: bool = True
) -> dict:
    """Export the trained ticket (first seed, or the seed directory given) and measure what it saves.
    Written whole or not at all (`files.staged_dir`); an earlier export in `out` is replaced."""
    from frugalml.cost.tracker import Ledger
    from frugalml.files import staged_dir

    if fmt not in FORMATS:
        raise FrugalError(f"unknown export format '{fmt}' ({', '.join(FORMATS)})")
    d, info = load_ticket(ticket)[0]
    out = Path(out) if out else d / f"export_{fmt}"
    with staged_dir(out, "tickets.export") as work:
        with Ledger(work, children=True, label="tickets.export") as ledger:
            result = _export(d, info, fmt, work, out, batch_sizes, measure)
            write_json(work / "result.json", result)
        write_export_record(work, result, info, ledger.total())
    return result


def _trained(d: Path, info: dict) -> tuple[nn.Module, Mask]:
    """The ticket's trained network (weights zero outside the mask) and its mask."""
    from frugalml.train import load_weights

    model = build_model(info["model"], info["input_shape"], info["num_classes"], init_seed=info["seed"])
    mask = Mask.load(d / MASK, model)
    load_weights(model, d / WEIGHTS)
    model.eval()
    outside = sum(
        int((p.detach()[~mask[k]] != 0).sum()) for k, p in dict(model.named_parameters()).items() if k in mask.masks
    )
    if outside:
        raise FrugalError(f"{d / WEIGHTS} has {outside} nonzero weights outside the mask: not a trained ticket")
    return model, mask


def _exported(model: nn.Module, info: dict, fmt: str, example) -> tuple[nn.Module, dict]:
    """The network a format stores: compact (pruned structures removed) for `compact`, `onnx` and
    every MLP export; where the shrinker cannot follow the graph, ONNX stores the masked dense one."""
    base = {"model": info["model"], "kwargs": _kwargs(info)}
    if fmt == "compact" or info["model"] == "mlp":
        return compact(model, example, base)
    if fmt == "onnx":
        try:
            return compact(model, example, base)
        except FrugalError:
            pass  # compact does not apply to this network: ONNX of the masked dense one
    return model, base | {"torch": "dense masked"}


def _export(d: Path, info: dict, fmt: str, work: Path, out: Path, batch_sizes, measure: bool) -> dict:
    from frugalml.tickets import tasks
    from frugalml.train import save_weights

    model, mask = _trained(d, info)
    ds = tasks.load(info["data"])
    exported, arch = _exported(model, info, fmt, ds.x_test[:2])
    arch.setdefault("torch", "compact")
    arch["format"] = fmt
    timings: dict = {}
    if fmt == "sparse":
        exported, kernels = to_sparse(exported, ds.x_test[: batch_sizes[0]] if measure else None, timings)
        arch["kernels"] = kernels
        arch["kernel_chosen_at_batch"] = batch_sizes[0] if measure else None
    path = save_export(exported, arch, work)
    reloaded = load_export(work)
    dense_file = work / "dense_masked.safetensors"
    save_weights(model, dense_file)  # the dense checkpoint, saved the same way, for the size comparison
    with torch.no_grad():
        ref = model(ds.x_test)
        got = reloaded(ds.x_test)
    acc = lambda logits: float((logits.argmax(1) == ds.y_test).float().mean())  # noqa: E731
    result = {
        "ticket": str(d),
        "format": fmt,
        "out": str(out),
        "remaining": mask.remaining(),
        "sparsity": 1 - mask.remaining(),
        "file": str(out / path.name),
        "bytes_dense": dense_file.stat().st_size,
        "bytes_export": path.stat().st_size,
        "size_ratio": dense_file.stat().st_size / path.stat().st_size,
        "max_abs_diff": float((ref - got).abs().max()),
        "accuracy_dense": acc(ref),
        "accuracy_export": acc(got),
        "arch": arch,
        "params_dense": sum(p.numel() for p in model.parameters()),
        "params_export": stored_params(reloaded),
    }
    if fmt == "sparse":
        result["layers"] = sparse_verdicts(arch["kernels"], timings)
    if fmt == "onnx":
        result |= _onnx(model, reloaded, ds, work, out, batch_sizes, measure)
    elif measure:
        result["latency"] = _eager_latency(model, reloaded, ds, batch_sizes)
        result["latency_note"] = "measured: torch.utils.benchmark median, 1 thread, this machine"
    return result


def sparse_verdicts(kernels: dict, timings: dict) -> list[dict]:
    """One row per Linear layer: the kernel kept and, when measured, both timings and csr/dense."""
    rows = []
    for name, kernel in kernels.items():
        t = timings.get(name)
        row = {"layer": name, "kernel": kernel}
        if t:
            row |= t | {"csr_over_dense": t["csr_s"] / t["dense_s"]}
        rows.append(row)
    return rows


def _eager_latency(model: nn.Module, reloaded: nn.Module, ds, batch_sizes) -> dict:
    from frugalml.cost.latency import compare_latency

    lat, pair = {}, {"dense": model, "export": reloaded}
    for b in batch_sizes:
        ab = compare_latency(pair, ds.x_test[:b], rounds=1, order="fixed", threads=1)
        dense_l, exp_l = ab["dense"][0], ab["export"][0]
        lat[str(b)] = {
            "dense_s": dense_l.median_s,
            "dense_iqr_s": dense_l.iqr_s,
            "export_s": exp_l.median_s,
            "export_iqr_s": exp_l.iqr_s,
            "speedup": dense_l.median_s / exp_l.median_s,
        } | ratio_spread(exp_l.median_s, exp_l.iqr_s, dense_l.median_s, dense_l.iqr_s)
    return lat


def _onnx(model: nn.Module, reloaded: nn.Module, ds, work: Path, out: Path, batch_sizes, measure: bool) -> dict:
    """`model.onnx` of the exported network, its agreement with PyTorch, size, accuracy and latency."""
    from frugalml.models import deploy

    xs = {b: deploy.batch_of(ds.x_test, b) for b in batch_sizes}
    res = deploy.onnx_report(
        reloaded, work / "model.onnx", xs, reference=("dense", model), test=(ds.x_test, ds.y_test), measure=measure
    )
    return {"onnx": str(out / "model.onnx")} | res


def write_export_record(out: Path, result: dict, info: dict, spent: dict) -> Path:
    """`record.json` of an export: the masked dense checkpoint before, the exported model after
    (batch-1 latency; for onnx, the ONNX file in onnxruntime, and its agreement with PyTorch)."""
    from frugalml.report import record

    lats = result.get("latency") or {}
    batch = min(lats, key=int) if lats else None
    lat = lats[batch] if lats else {}
    how = f"{result.get('latency_note', '')}, batch {batch} (per inference at batch 1)"
    onnx = result["format"] == "onnx"

    def side(params: int, n_bytes: int, latency: float | None, runtime: str) -> dict:
        notes = {"params": f"counted: stored parameters; file {n_bytes:,} bytes"}
        notes |= {"latency_s": f"{how}, {runtime}"} if latency else {}
        return {"params": params, "latency_s": latency, "notes": notes}

    quality = {
        "accuracy": record.metric(result["accuracy_onnx" if onnx else "accuracy_export"]),
        "dense_accuracy": record.metric(result["accuracy_dense"]),
    }
    artifacts = {"model": "model.safetensors", "export": "export.json", "result": "result.json", "spent": "spent.json"}
    artifacts["dense_masked"] = "dense_masked.safetensors"
    if onnx:
        quality["onnx_max_abs_diff"] = record.metric(result["onnx_max_abs_diff"], higher_is_better=False)
        artifacts["onnx"] = "model.onnx"
    after_bytes = result["bytes_onnx"] if onnx else result["bytes_export"]
    after = side(
        result["params_export"],
        after_bytes,
        lat.get("onnxruntime_s" if onnx else "export_s"),
        "onnxruntime" if onnx else "PyTorch eager",
    )
    if result.get("layers"):  # the sparse export's verdict per layer, with the timings it rests on
        after["notes"]["kernels"] = "; ".join(_verdict(r) for r in result["layers"])
    rec = record.build(
        "tickets.export",
        quality=quality,
        config={"ticket": result["ticket"], "format": result["format"], "remaining": result["remaining"]},
        data=info["data"],
        model=info["model"],
        before=side(result["params_dense"], result["bytes_dense"], lat.get("dense_s"), "PyTorch eager"),
        after=after,
        spent=spent,
        artifacts=artifacts,
    )
    return record.write(out, rec)


def _verdict(row: dict) -> str:
    if "csr_s" not in row:
        return f"{row['layer']} {row['kernel']} (not timed)"
    return f"{row['layer']} {row['kernel']} (CSR {row['csr_s'] * 1e6:.1f} us, dense {row['dense_s'] * 1e6:.1f} us)"


def stored_params(model: nn.Module) -> int:
    """Parameters an exported model stores: its dense tensors plus the values of its CSR weights."""
    csr = sum(m.weight_csr.values().numel() for m in model.modules() if isinstance(m, SparseLinear))
    return csr + sum(p.numel() for p in model.parameters())


def _kwargs(info: dict) -> dict:
    """The keyword arguments that rebuild the ticket's network (`models.for_data`'s, for its task)."""
    shape, n = info["input_shape"], info["num_classes"]
    size = 1
    for s in shape:
        size *= s
    if info["model"] == "mlp":
        return {"in_features": size, "num_classes": n}
    image = {"in_channels": shape[0], "input_size": shape[1]} if len(shape) == 3 else {}
    if ":" in info["model"]:  # a user factory, called with those it accepts
        return {"num_classes": n, "in_features": size, "input_shape": list(shape)} | image
    return image | {"num_classes": n}
