"""Our counts beside other FLOP counters on the transformers people use: BERT-base and ViT-S/16.

Each model (random weights, Hugging Face definitions via `frugalml.models`, nothing
downloaded) is counted by `frugal profile`'s `frugalml.cost.profile`, by PyTorch's own
`FlopCounterMode` without our formulas, and by fvcore, ptflops (both backends) and calflops
when they are importable, under both attention implementations ("sdpa", the default, and
"eager"). The hand count (architecture formula, see tests/cost/test_hf.py) is the reference;
`missed_macs` is how far each tool falls short of it (negative: it counts more, e.g. layer
norms and activations as FLOPs); `eager_minus_sdpa` is what a tool sees of the attention
kernel only when it runs as plain matmuls. All figures are MACs.

    PYTHONPATH=/path/to/peers python benchmarks/bench_profile_peers.py

(the peers are not dependencies: `pip install --target /path/to/peers fvcore ptflops calflops`)
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import torch  # noqa: E402

from frugalml import models  # noqa: E402
from frugalml.models.inputs import make_inputs, parse_inputs  # noqa: E402

VIT_S16 = {
    "model_type": "vit",
    "hidden_size": 384,
    "num_hidden_layers": 12,
    "num_attention_heads": 6,
    "intermediate_size": 1536,
    "image_size": 224,
    "patch_size": 16,
    "num_channels": 3,
}


def hand_macs(layers: int, tokens: int, hidden: int, ffn: int, extra: int) -> dict[str, int]:
    """Projections 4LH², attention kernel 2L²H, FFN 2LHI per layer, plus `extra` (pooler, patch embedding)."""
    attention = layers * 2 * tokens**2 * hidden
    total = layers * (4 * tokens * hidden**2 + 2 * tokens * hidden * ffn) + attention + extra
    return {"total": total, "attention_kernel": attention}


def _vanilla_flop_counter(net, args, kwargs) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    assert "frugalml.cost.formulas" not in sys.modules, "our formulas would be in PyTorch's registry"
    counter = FlopCounterMode(display=False)
    with counter:
        net(*args, **kwargs)
    return counter.get_total_flops() // 2


def _fvcore(net, args, kwargs) -> int:
    from fvcore.nn import FlopCountAnalysis

    names = list(kwargs)
    positional = (*args, *(kwargs[n] for n in names))  # BertModel(input_ids, attention_mask), ViTModel(pixel_values)
    analysis = FlopCountAnalysis(net, positional).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(analysis.total())  # fvcore's "flops" are MACs


def _ptflops(backend: str):
    def count(net, args, kwargs) -> int:
        from ptflops import get_model_complexity_info

        macs, _ = get_model_complexity_info(
            net, (1,), input_constructor=lambda _: dict(kwargs), as_strings=False,
            print_per_layer_stat=False, backend=backend,
        )  # fmt: skip
        return int(macs)

    return count


def _calflops(net, args, kwargs) -> int:
    from calflops import calculate_flops

    _, macs, _ = calculate_flops(net, kwargs=dict(kwargs), print_results=False, output_as_string=False)
    return int(macs)


PEERS = {
    "FlopCounterMode (torch, as shipped)": _vanilla_flop_counter,
    "fvcore": _fvcore,
    "ptflops (pytorch backend)": _ptflops("pytorch"),
    "ptflops (aten backend)": _ptflops("aten"),
    "calflops": _calflops,
}


def _count(fn, net, args, kwargs) -> tuple[int | None, str | None]:
    try:
        with torch.no_grad(), warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            return fn(net, args, kwargs), None
    except Exception as e:  # a peer that cannot count this model is a result too
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]


def _cases(tmp: Path) -> dict[str, tuple[str, dict]]:
    (tmp / "config.json").write_text(json.dumps(VIT_S16))
    bert = hand_macs(12, 128, 768, 3072, extra=768**2)  # pooler on the [CLS] token
    patches = (224 // 16) ** 2
    vit = hand_macs(12, patches + 1, 384, 1536, extra=patches * 384 * 3 * 16 * 16 + 384**2)  # patch conv, pooler
    return {"bert-base (128 tokens)": ("hf:bert", bert), "ViT-S/16 (224x224)": (f"hf:{tmp / 'config.json'}", vit)}


def main() -> None:
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = _cases(Path(tmp))
        nets = {}
        for label, (name, hand) in cases.items():
            for impl in ("sdpa", "eager"):
                torch.manual_seed(0)
                net = models.get(name, attn_implementation=impl)
                args, kwargs = make_inputs(parse_inputs(models.default_inputs(name)), net)
                nets[label, impl] = (net, args, kwargs, hand)
                results.setdefault(label, {"hand": hand, "params": sum(p.numel() for p in net.parameters())})
                for tool, fn in PEERS.items():
                    macs, error = _count(fn, net, args, kwargs)
                    _record(results[label], impl, tool, macs, error, hand)
        from frugalml.cost.counting import profile  # registers our formulas: after the peers

        for (label, impl), (net, args, kwargs, hand) in nets.items():
            macs, error = _count(lambda n, a, k: profile(n, args=a, kwargs=k).macs, net, args, kwargs)
            _record(results[label], impl, "frugalml", macs, error, hand)
    for r in results.values():
        r["eager_minus_sdpa"] = {
            tool: None
            if row["macs"] is None or r["eager"][tool]["macs"] is None
            else r["eager"][tool]["macs"] - row["macs"]
            for tool, row in r["sdpa"].items()
        }
    for label, r in results.items():
        print(f"{label}: hand count {r['hand']['total']:,} MACs (attention kernel {r['hand']['attention_kernel']:,})")
        for impl in ("sdpa", "eager"):
            for tool, row in r[impl].items():
                got = (
                    "failed: " + row["error"]
                    if row["macs"] is None
                    else f"{row['macs']:,} (missed {row['missed_macs']:,})"
                )
                print(f"  {impl:5s} {tool:36s} {got}")
        print("  eager - sdpa:", ", ".join(f"{t} {d:,}" for t, d in r["eager_minus_sdpa"].items() if d is not None))
    from frugalml.report.bench import save_result

    versions = {m: _version(m) for m in ("transformers", "fvcore", "ptflops", "calflops")}
    print("->", save_result("profile_peers", {"results": results, "versions": versions}))


def _record(into: dict, impl: str, tool: str, macs, error, hand: dict) -> None:
    row = {"macs": macs, "missed_macs": None if macs is None else hand["total"] - macs}
    if error:
        row["error"] = error
    into.setdefault(impl, {})[tool] = row


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
