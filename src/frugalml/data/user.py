"""Your own data: a `.npz` / `.pt` file of arrays, or a `module:loader` function.

    frugalml.data.get("my.npz")            # arrays x_train, y_train, x_test, y_test (+ x_val, y_val)
    frugalml.data.get("my.pt")             # the same arrays, saved with torch.save({...})
    frugalml.data.get("mydata:load")       # mydata.load() returns such a dict or a Dataset
    frugalml.data.get("path/to/f.py:load") # the same from a file

Every source goes through `from_arrays`, which checks what a run would otherwise trip on
later: the four arrays present, inputs numeric and finite, labels integer and in
0..num_classes-1, each x as long as its y, every split with the same example shape. A
failed check is one `FrugalError` line naming the array. Inputs become float32, labels
int64; `num_classes` is the array `num_classes` if the file has one, else the largest label
+ 1. The optional validation split is kept in `Dataset.info` (`x_val`, `y_val`).
"""

from __future__ import annotations

import os
from pathlib import Path

from frugalml.data.base import Dataset
from frugalml.errors import FrugalError

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("x_val", "y_val")
SUFFIXES = (".npz", ".pt", ".pth")
NEEDS = "needs arrays x_train, y_train, x_test, y_test (optional x_val, y_val)"


def is_user(spec: str) -> bool:
    """Whether `spec` names user data (a file, or module:loader) rather than a registered generator."""
    spec = str(spec)
    if spec.lower().endswith(SUFFIXES) or "/" in spec or os.sep in spec:
        return True
    name, colon, rest = spec.partition(":")
    if not colon or "=" in rest or not rest.isidentifier():
        return False  # NAME or NAME:key=value,... is a generator's task spec
    from frugalml import data

    return name not in data.names()


def slug(spec: str) -> str:
    """A directory-name-safe short name for a data spec (`path/to/my.npz` -> `my`)."""
    spec = str(spec)
    if is_user(spec):
        module, _, attr = spec.rpartition(":")
        stem = Path(spec).stem if spec.lower().endswith(SUFFIXES) else f"{Path(module).stem}_{attr}"
        return stem.replace(".", "_")
    return spec.replace(":", "_").replace(",", "_").replace("=", "-")


def load(spec: str) -> Dataset:
    """The `Dataset` user data `spec` names, checked (see the module docstring)."""
    spec = str(spec)
    if spec.lower().endswith(SUFFIXES):
        return from_arrays(_read_file(Path(spec)), spec)
    module, colon, attr = spec.rpartition(":")
    if not colon or not module or not attr:
        raise FrugalError(f"data '{spec}' is neither a .npz/.pt file nor module:loader")
    got = _call_loader(module, attr, spec)
    if isinstance(got, Dataset):
        arrays = {k: getattr(got, k) for k in REQUIRED} | {"num_classes": got.num_classes}
        arrays |= {k: got.info[k] for k in OPTIONAL if k in got.info}
        return from_arrays(arrays, spec)
    if not isinstance(got, dict):
        raise FrugalError(f"data loader '{spec}' returned {type(got).__name__}: expected a dict of arrays or a Dataset")
    return from_arrays(got, spec)


def _read_file(path: Path) -> dict:
    if not path.is_file():
        raise FrugalError(f"data file '{path}' not found")
    if path.suffix.lower() == ".npz":
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except ValueError as e:
            if "allow_pickle" in str(e):
                raise FrugalError(
                    f"data file '{path}' holds an object (non-numeric) array: save numbers only"
                ) from None
            raise FrugalError(f"cannot read data file '{path}': {e}") from None
        except Exception as e:
            raise FrugalError(f"cannot read data file '{path}' as .npz: {type(e).__name__}: {e}") from None
    import torch

    try:
        got = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise FrugalError(f"cannot read data file '{path}' as a tensor dict: {type(e).__name__}: {first}") from None
    if not isinstance(got, dict):
        raise FrugalError(f"data file '{path}' holds a {type(got).__name__}: expected a dict of arrays ({NEEDS})")
    return got


def _call_loader(module: str, attr: str, spec: str):
    from frugalml.models import _import_user_module

    mod = _import_user_module(module, spec, what="data")
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise FrugalError(f"'{attr}' in module '{module}' is not a callable data loader")
    try:
        return fn()
    except FrugalError:
        raise
    except Exception as e:
        raise FrugalError(f"data loader '{spec}' failed: {type(e).__name__}: {e}") from None


def _tensor(name: str, value, where: str):
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except Exception as e:
        raise FrugalError(f"{where}: array '{name}' is not an array ({type(e).__name__})") from None
    if arr.dtype.kind not in "biuf":
        raise FrugalError(f"{where}: array '{name}' is not numeric (dtype {arr.dtype})")
    return arr


def from_arrays(arrays: dict, where: str = "data") -> Dataset:
    """A checked `Dataset` from a dict of arrays (numpy, torch or lists)."""
    import numpy as np
    import torch

    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise FrugalError(f"{where} lacks {', '.join(missing)}: {NEEDS}")
    val = [k for k in OPTIONAL if k in arrays]
    if len(val) == 1:
        raise FrugalError(f"{where} has {val[0]} without {({'x_val', 'y_val'} - set(val)).pop()}: give both or neither")
    names = list(REQUIRED) + (list(OPTIONAL) if val else [])
    a = {k: _tensor(k, arrays[k], where) for k in names}
    shape = a["x_train"].shape[1:]
    for split in ("train", "test", "val") if val else ("train", "test"):
        x, y = a[f"x_{split}"], a[f"y_{split}"]
        if x.ndim < 2 or len(x) == 0:
            raise FrugalError(
                f"{where}: x_{split} has shape {x.shape}: expected (examples, features...) with >= 1 example"
            )
        if x.shape[1:] != shape:
            raise FrugalError(f"{where}: x_{split} examples have shape {x.shape[1:]}, x_train's have {shape}")
        if y.ndim != 1:
            raise FrugalError(f"{where}: y_{split} has shape {y.shape}: expected one integer label per example")
        if len(x) != len(y):
            raise FrugalError(f"{where}: x_{split} has {len(x)} examples but y_{split} has {len(y)} labels")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise FrugalError(f"{where}: x_{split} holds NaN or infinite values")
        if y.dtype.kind not in "iu":
            raise FrugalError(f"{where}: labels y_{split} must be integers, got dtype {y.dtype}")
    num_classes = _num_classes(arrays, a, where)
    for split in ("train", "test", "val") if val else ("train", "test"):
        y = a[f"y_{split}"]
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise FrugalError(f"{where}: label {bad} in y_{split} is outside 0..{num_classes - 1}")

    def x_of(k):
        return torch.from_numpy(np.ascontiguousarray(a[k], dtype=np.float32))

    def y_of(k):
        return torch.from_numpy(a[k].astype(np.int64))

    info = {"source": str(where)}
    if val:
        info |= {"x_val": x_of("x_val"), "y_val": y_of("y_val")}
    name = Path(str(where)).name
    return Dataset(name, x_of("x_train"), y_of("y_train"), x_of("x_test"), y_of("y_test"), num_classes, info)


def _num_classes(arrays: dict, a: dict, where: str) -> int:
    if "num_classes" in arrays:
        try:
            n = int(_tensor("num_classes", arrays["num_classes"], where).reshape(-1)[0])
        except IndexError:
            raise FrugalError(f"{where}: num_classes is empty") from None
        if n < 2:
            raise FrugalError(f"{where}: num_classes must be >= 2, got {n}")
        return n
    n = int(a["y_train"].max()) + 1
    if n < 2:
        raise FrugalError(f"{where}: y_train holds one class only (labels 0..{n - 1}); a classifier needs two or more")
    return n
