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

FORMATS = ("compact", "sparse")


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


def to_sparse(model: nn.Module, example: torch.Tensor | None = None) -> tuple[nn.Module, dict]:
    """Swap every nn.Linear for a SparseLinear; with `example`, pick each layer's faster kernel."""
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
    if arch["format"] == "compact":
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
    """Export the trained ticket (first seed, or the seed directory given) and measure what it saves."""
    from frugalml.cost.tracker import Ledger

    if fmt not in FORMATS:
        raise FrugalError(f"unknown export format '{fmt}' (compact, sparse)")
    d, info = load_ticket(ticket)[0]
    out = Path(out) if out else d / f"export_{fmt}"
    fresh = not out.exists()
    try:
        with Ledger(out, children=True, label="tickets.export") as ledger:
            result = _export(d, info, fmt, out, batch_sizes, measure)
            write_json(out / "result.json", result)
    except FrugalError:
        if fresh:  # a model the exporter cannot handle leaves nothing half-written
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        raise
    write_export_record(out, result, info, ledger.total())
    return result


def _export(d: Path, info: dict, fmt: str, out: Path, batch_sizes, measure: bool) -> dict:
    from frugalml.tickets import tasks
    from frugalml.train import load_weights, save_weights

    model = build_model(info["model"], info["input_shape"], info["num_classes"], init_seed=info["seed"])
    mask = Mask.load(d / MASK, model)
    load_weights(model, d / WEIGHTS)
    model.eval()
    outside = sum(
        int((p.detach()[~mask[k]] != 0).sum()) for k, p in dict(model.named_parameters()).items() if k in mask.masks
    )
    if outside:
        raise FrugalError(f"{d / WEIGHTS} has {outside} nonzero weights outside the mask: not a trained ticket")
    ds = tasks.load(info["data"])
    is_mlp = info["model"] == "mlp"
    if fmt == "compact" or is_mlp:
        exported, arch = compact(model, ds.x_test[:2], {"model": info["model"], "kwargs": _kwargs(info)})
    else:
        exported, arch = model, {"model": info["model"], "kwargs": _kwargs(info)}
    arch["format"] = fmt
    if fmt == "sparse":
        exported, kernels = to_sparse(exported, ds.x_test[: batch_sizes[0]] if measure else None)
        arch["kernels"] = kernels
        arch["kernel_chosen_at_batch"] = batch_sizes[0] if measure else None
    path = save_export(exported, arch, out)
    reloaded = load_export(out)
    dense_file = out / "dense_masked.safetensors"
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
        "file": str(path),
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
    if measure:
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
        result["latency"] = lat
        result["latency_note"] = "measured: torch.utils.benchmark median, 1 thread, this machine"
    return result


def write_export_record(out: Path, result: dict, info: dict, spent: dict) -> Path:
    """`record.json` of an export: the masked dense checkpoint before, the exported model after (batch-1 latency)."""
    from frugalml.report import record

    lats = result.get("latency") or {}
    batch = min(lats, key=int) if lats else None
    lat = lats[batch] if lats else {}
    how = f"{result.get('latency_note', '')}, batch {batch} (per inference at batch 1)"

    def side(params: int, n_bytes: int, latency: float | None) -> dict:
        notes = {"params": f"counted: stored parameters; file {n_bytes:,} bytes"}
        return {"params": params, "latency_s": latency, "notes": notes | ({"latency_s": how} if latency else {})}

    rec = record.build(
        "tickets.export",
        quality={
            "accuracy": record.metric(result["accuracy_export"]),
            "dense_accuracy": record.metric(result["accuracy_dense"]),
        },
        config={"ticket": result["ticket"], "format": result["format"], "remaining": result["remaining"]},
        data=info["data"],
        model=info["model"],
        before=side(result["params_dense"], result["bytes_dense"], lat.get("dense_s")),
        after=side(result["params_export"], result["bytes_export"], lat.get("export_s")),
        spent=spent,
        artifacts={
            "model": "model.safetensors",
            "export": "export.json",
            "result": "result.json",
            "spent": "spent.json",
        }
        | {"dense_masked": "dense_masked.safetensors"},
    )
    return record.write(out, rec)


def stored_params(model: nn.Module) -> int:
    """Parameters an exported model stores: its dense tensors plus the values of its CSR weights."""
    csr = sum(m.weight_csr.values().numel() for m in model.modules() if isinstance(m, SparseLinear))
    return csr + sum(p.numel() for p in model.parameters())


def _kwargs(info: dict) -> dict:
    shape, n = info["input_shape"], info["num_classes"]
    if info["model"] == "mlp":
        size = 1
        for s in shape:
            size *= s
        return {"in_features": size, "num_classes": n}
    return {"in_channels": shape[0], "input_size": shape[1], "num_classes": n}
