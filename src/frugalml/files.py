"""Atomic result files and the configuration check of a run directory.

A result file is either complete or absent: writes go to a temporary file in the same
directory, then `os.replace` moves it into place.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from frugalml.errors import FrugalError


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; a result file gets the mode any new file of the user would get
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _jsonable(obj: Any) -> Any:
    """Make numpy/torch scalars and non-finite floats safe for strict JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 0) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def to_json(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(_jsonable(obj), indent=indent, allow_nan=False)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    data = (to_json(obj) + "\n").encode()
    _atomic_write(Path(path), lambda f: f.write(data))
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    _atomic_write(Path(path), lambda f: f.write(text.encode()))
    return Path(path)


def atomic_save(path: str | os.PathLike, save) -> Path:
    """Call `save(file_object)` and move the result into place only if it succeeded."""
    _atomic_write(Path(path), save)
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FrugalError(f"file not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise FrugalError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None


CONFIG = "config.json"


def check_run_config(run_dir: str | os.PathLike, record: dict, filename: str = CONFIG, what: str = "run") -> None:
    """Bind a run directory to one configuration: write it on first use; on later use,
    refuse (naming the differing keys) if the configuration changed, so a resumed run
    can never silently mix two experiments."""
    path = Path(run_dir) / filename
    if path.exists():
        old = read_json(path)
        if old != _jsonable(record):
            new = _jsonable(record)
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise FrugalError(
                f"{run_dir} holds a {what} with a different configuration ({', '.join(diff)} differ): "
                "choose another --out or delete it"
            )
    else:
        write_json(path, record)


def open_run(run_dir: str | os.PathLike, config: Any, what: str = "run") -> Path:
    """Create `run_dir` if needed and bind it to `config` (a dataclass or a dict) in
    `config.json`, the one file every run directory keeps its configuration in."""
    from dataclasses import asdict, is_dataclass

    record = asdict(config) if is_dataclass(config) else dict(config)
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    check_run_config(path, record, CONFIG, what)
    return path


def staged_dir(out: str | os.PathLike, kind: str):
    """A context manager for a directory written whole or not at all: yields a fresh temporary
    directory beside `out`, which replaces `out` when the block succeeds and is removed when it
    fails. `out` may be missing, empty, or an earlier result of the same `kind` (its record.json
    says so); anything else is refused before anything is written."""
    import contextlib
    import shutil

    out = Path(out)
    if out.is_file():
        raise FrugalError(f"--out {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()):
        rec = out / "record.json"
        if not (rec.is_file() and (read_json(rec) or {}).get("kind") == kind):
            raise FrugalError(f"--out {out} exists and is not an earlier {kind} result: give a new directory")

    @contextlib.contextmanager
    def stage():
        work = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            yield work
            if out.exists():
                shutil.rmtree(out)
            os.replace(work, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return stage()
