"""Task specs: a data set name plus generator options and a class subset, as one string.

    digits                     scikit-learn digits, all 10 classes
    digits:classes=0-4         digits 0..4, relabelled 0..4
    mnist1d:shear_scale=1.2,corr_noise_scale=0.5
    digits:classes=1+3+5       an explicit class list
    path/to/my.npz             your own arrays (or my.pt, or module:loader): `frugalml.data.user`

Tickets record the spec they were found on, so a transfer can rebuild both tasks.
"""

from __future__ import annotations

from functools import lru_cache

from frugalml.errors import FrugalError


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _classes(text: str) -> list[int]:
    try:
        if "-" in text:
            a, b = text.split("-")
            return list(range(int(a), int(b) + 1))
        return [int(c) for c in text.split("+")]
    except ValueError:
        raise FrugalError(f"malformed classes '{text}': use a range like 0-4 or a list like 1+3+5") from None


def parse(spec: str) -> tuple[str, dict, list[int] | None]:
    from frugalml.data import user

    if user.is_user(spec):
        return spec, {}, None  # a file or module:loader takes no options
    name, _, rest = spec.partition(":")
    if not name:
        raise FrugalError(f"malformed data spec '{spec}': expected NAME[:key=value,...]")
    opts: dict = {}
    classes = None
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise FrugalError(f"malformed option '{part}' in data spec '{spec}': expected key=value")
        if key == "classes":
            classes = _classes(value)
        else:
            opts[key] = _number(value)
    return name, opts, classes


@lru_cache(maxsize=8)
def load(spec: str):
    """The `frugalml.data.Dataset` a spec names (cached: generators are deterministic)."""
    from frugalml import data

    name, opts, classes = parse(spec)
    ds = data.get(name, **opts)
    if classes is not None:
        ds = ds.subset_classes(classes)
    ds.name = spec if ":" in spec else ds.name
    return ds


def check_model(model, ds, model_name: str) -> None:
    """The model takes the task's examples and gives one logit per class, or a FrugalError saying what it gives."""
    import torch

    x = ds.x_train[:2]
    try:
        with torch.no_grad():
            y = model.eval()(x)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise FrugalError(
            f"model '{model_name}' fails on examples of shape {tuple(x.shape[1:])} from '{ds.name}': "
            f"{type(e).__name__}: {first}"
        ) from None
    finally:
        model.train()
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (len(x), ds.num_classes):
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise FrugalError(
            f"model '{model_name}' gives outputs of shape {got} for a batch of {len(x)}; "
            f"'{ds.name}' has {ds.num_classes} classes: expected ({len(x)}, {ds.num_classes})"
        )
