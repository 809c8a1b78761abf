"""One registry of reference networks, every one constructible by name.

    from frugalml import models
    net = models.get("resnet50")              # standard ImageNet definition
    net = models.get("mlp", in_features=40)   # LeNet-300-100 style for MNIST-1D
    models.default_input("alexnet-grouped")   # (1, 3, 227, 227)

`get` also accepts "package.module:factory" (the current directory on the import path) and
"path/to/file.py:factory" so users can bring their own network, and Hugging Face
architectures with random weights, nothing downloaded: "hf:bert", "hf:gpt2",
"hf:path/to/config.json" (`frugalml.models.hf`, transformers imported on first use).
`default_inputs(name)` gives a model's example inputs in `--input` grammar
(`frugalml.models.inputs`), named ones included (input_ids=1x128:int64 ...).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from frugalml.errors import FrugalError


@dataclass(frozen=True)
class Entry:
    factory: Callable
    default_input: tuple[int, ...]
    summary: str


_REGISTRY: dict[str, Entry] = {}


def register(name: str, default_input: tuple[int, ...], summary: str = ""):
    def deco(fn):
        _REGISTRY[name] = Entry(fn, tuple(default_input), summary or (fn.__doc__ or "").strip())
        return fn

    return deco


def _load_builtin() -> None:
    # Importing registers; Python imports each module once, so this is cheap after the first
    # call, and it works even when another module imported one of them directly first.
    from frugalml.models import classic, small  # noqa: F401


def names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def entry(name: str) -> Entry:
    _load_builtin()
    if name not in _REGISTRY:
        raise FrugalError(f"unknown model '{name}' (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def _is_hf(name: str) -> bool:
    return name.startswith("hf:")


def default_input(name: str) -> tuple[int, ...]:
    """The shape of a registry model's one example input."""
    if _is_hf(name):
        raise FrugalError(f"model '{name}' takes named inputs: see models.default_inputs('{name}')")
    if ":" in name:
        raise FrugalError(f"no default input for user model '{name}': pass --input")
    return entry(name).default_input


def default_inputs(name: str) -> list[str]:
    """A model's example inputs in `--input` grammar: ['1,3,224,224'], or named, e.g.
    ['input_ids=1x128:int64', 'attention_mask=1x128:int64'] for a Hugging Face text model."""
    if _is_hf(name):
        from frugalml.models import hf

        return hf.default_inputs(name)
    return [",".join(map(str, default_input(name)))]


def parse_shape(text: str) -> tuple[int, ...]:
    """An input shape written as `1,3,224,224` (or `1x3x224x224`), as `--input` takes it."""
    import re

    parts = re.split(r"[,x]", text.strip())
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise FrugalError(f"malformed --input '{text}': expected positive integers like 1,3,224,224")
    return tuple(int(p) for p in parts)


def _import_user_module(module_name: str, spec: str, what: str = "model"):
    """`pkg.module` with the current directory on the import path, or a `.py` file by path
    (`what` names the thing being loaded in errors: model, data)."""
    import os
    import sys
    from pathlib import Path

    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        path = Path(module_name).expanduser().resolve()
        if not path.is_file():
            raise FrugalError(f"{what} file '{module_name}' not found (from {os.getcwd()}) for {what} '{spec}'")
        key = f"frugalml_user_{abs(hash(str(path)))}_{path.stem}"
        file_spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(file_spec)
        sys.modules[key] = module
        try:
            file_spec.loader.exec_module(module)
        except Exception as e:
            del sys.modules[key]
            raise FrugalError(f"cannot load {what} file '{module_name}': {type(e).__name__}: {e}") from None
        return module
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        raise FrugalError(f"cannot import module '{module_name}' for {what} '{spec}': {e}") from None
    finally:
        if added:
            sys.path.remove(cwd)


def _user_factory(spec: str) -> Callable:
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise FrugalError(f"malformed model '{spec}': expected module:factory or path/to/file.py:factory")
    module = _import_user_module(module_name, spec)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise FrugalError(f"'{attr}' in module '{module_name}' is not a callable model factory")
    return factory


def _accepted(factory: Callable, kwargs: dict) -> dict:
    """The keyword arguments `factory` takes (all of them if it has **kwargs)."""
    import inspect

    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return kwargs
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return {k: v for k, v in kwargs.items() if k in names}


def get(name: str, **kwargs):
    """Build a model by registry name, 'package.module:factory' or 'path/to/file.py:factory'.

    A user factory is called with only the keyword arguments it accepts; for "hf:..." they
    override config fields."""
    if _is_hf(name):
        from frugalml.models import hf

        return hf.build(name, **kwargs)
    if ":" in name:
        factory = _user_factory(name)
        kwargs = _accepted(factory, kwargs)
    else:
        factory = entry(name).factory
    try:
        return factory(**kwargs)
    except TypeError as e:
        raise FrugalError(f"model '{name}' does not take these options {kwargs}: {e}") from None


def for_data(name: str, dataset, **kwargs):
    """Build `name` sized for a `frugalml.data.Dataset` (input shape and classes). A user factory
    gets those of num_classes, in_features, input_shape, in_channels, input_size it accepts."""
    shape = dataset.input_shape
    size = {"num_classes": dataset.num_classes}
    n = 1
    for s in shape:
        n *= s
    if ":" in name and not _is_hf(name):  # a user factory: offered every size, called with those it takes
        size |= {"in_features": n, "input_shape": tuple(shape)}
        size |= {"in_channels": shape[0], "input_size": shape[1]} if len(shape) == 3 else {}
    elif name == "mlp":
        size["in_features"] = n
    elif len(shape) == 3:
        size["in_channels"] = shape[0]
        size["input_size"] = shape[1]
    elif len(shape) == 1 and "input_length" in _accepted(entry(name).factory, {"input_length": 0}):
        size["input_length"] = shape[0]  # a 1-D signal net (conv6_1d)
    else:
        raise FrugalError(f"model '{name}' needs image input (C,H,W) or a 1-D signal net; data gives {shape}")
    return get(name, **(size | kwargs))


__all__ = ["default_input", "default_inputs", "entry", "for_data", "get", "names", "parse_shape", "register"]
