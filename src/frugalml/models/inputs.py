"""Example inputs written as text, as `frugal profile --input/--kw` take them, and the tensors they stand for.

    --input 1,3,224,224                       one positional float32 tensor (also 1x3x224x224)
    --input 1x128:int64                       one positional int64 tensor
    --input input_ids=1x128:int64 --input attention_mask=1x128:int64     passed by name
    --kw use_cache=false                      a keyword argument: bool, int, float, none or a string

Tensors are drawn from a fixed seed: floats from N(0, 1); integers in the model's vocabulary
(`config.vocab_size`, as on a Hugging Face model) when it has one, else in [0, 2); an integer
input named `*mask` is all ones, `token_type_ids` all zeros, `position_ids` 0..n-1. Parsing
imports no torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from frugalml.errors import FrugalError

# accepted spelling -> torch dtype name
DTYPES = {
    **{k: "float32" for k in ("float32", "float", "fp32", "f32")},
    **{k: "float16" for k in ("float16", "half", "fp16", "f16")},
    **{k: "bfloat16" for k in ("bfloat16", "bf16")},
    **{k: "float64" for k in ("float64", "double", "fp64", "f64")},
    **{k: "int64" for k in ("int64", "long", "i64")},
    **{k: "int32" for k in ("int32", "int", "i32")},
    **{k: "int16" for k in ("int16", "short", "i16")},
    **{k: "int8" for k in ("int8", "i8")},
    "uint8": "uint8",
    "bool": "bool",
}
_FLOATS = {"float32", "float16", "bfloat16", "float64"}


@dataclass(frozen=True)
class InputSpec:
    """One input: its name (None: positional), shape and torch dtype name."""

    name: str | None
    shape: tuple[int, ...]
    dtype: str = "float32"

    def __str__(self) -> str:
        text = "x".join(map(str, self.shape)) + ("" if self.dtype == "float32" else f":{self.dtype}")
        return text if self.name is None else f"{self.name}={text}"


def parse_input(text: str) -> InputSpec:
    """`[name=]dims[:dtype]`, dims separated by `,` or `x` (`input_ids=1x128:int64`)."""
    token = text.strip()
    name, sep, rest = token.partition("=")
    if not sep:
        name, rest = None, token
    elif not name.strip().isidentifier():
        raise FrugalError(f"malformed --input '{text}': '{name}' is not an input name (name=1x128:int64)")
    dims, sep, dtype = rest.partition(":")
    dtype = dtype.strip().lower() if sep else "float32"
    if dtype not in DTYPES:
        raise FrugalError(f"malformed --input '{text}': unknown dtype '{dtype}' (known: {', '.join(sorted(DTYPES))})")
    parts = re.split(r"[,x]", dims.strip())
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise FrugalError(f"malformed --input '{text}': expected positive integers like 1,3,224,224 or 1x128:int64")
    return InputSpec(name.strip() if name else None, tuple(int(p) for p in parts), DTYPES[dtype])


def parse_inputs(texts: list[str]) -> list[InputSpec]:
    """Several `--input`s; a name given twice is an error."""
    specs = [parse_input(t) for t in texts]
    names = [s.name for s in specs if s.name is not None]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise FrugalError(f"--input '{twice[0]}' given twice")
    return specs


def parse_value(text: str):
    """A `--kw` value: true/false, none/null, an int, a float, else the string itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_kws(texts: list[str]) -> dict:
    """`--kw name=value` pairs as keyword arguments."""
    out = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key.strip().isidentifier():
            raise FrugalError(f"malformed --kw '{text}': expected name=value, e.g. use_cache=false")
        out[key.strip()] = parse_value(value)
    return out


def vocab_size(model) -> int | None:
    """The vocabulary size a model's config states (a Hugging Face model's `config.vocab_size`), else None."""
    config = getattr(model, "config", None)
    size = getattr(config, "vocab_size", None)
    if size is None and hasattr(config, "get_text_config"):
        size = getattr(config.get_text_config(), "vocab_size", None)
    return size if isinstance(size, int) and size > 0 else None


def make_tensor(spec: InputSpec, vocab: int | None, generator):
    """The example tensor for one input spec (see the module docstring for the values)."""
    import torch

    dtype = getattr(torch, spec.dtype)
    if spec.dtype in _FLOATS:
        return torch.randn(spec.shape, generator=generator).to(dtype)
    if spec.dtype == "bool":
        return torch.ones(spec.shape, dtype=dtype)
    name = spec.name or ""
    if name.endswith("mask"):
        return torch.ones(spec.shape, dtype=dtype)
    if name == "token_type_ids":
        return torch.zeros(spec.shape, dtype=dtype)
    if name == "position_ids":
        return torch.arange(spec.shape[-1], dtype=dtype).expand(spec.shape).contiguous()
    return torch.randint(0, vocab or 2, spec.shape, generator=generator, dtype=dtype)


def make_inputs(specs: list[InputSpec], model=None, seed: int = 0) -> tuple[tuple, dict]:
    """(positional tensors, named tensors) for `specs`, integers drawn in `model`'s vocabulary when it states one."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    vocab = vocab_size(model)
    tensors = [(s.name, make_tensor(s, vocab, generator)) for s in specs]
    return tuple(t for n, t in tensors if n is None), {n: t for n, t in tensors if n is not None}
