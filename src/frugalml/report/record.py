"""The run record: one `record.json` per run directory, one schema for every technique.

A record says what a run produced and what it cost, in the one currency:

- `quality`: the task's metrics by name (`accuracy`, `miou`, `exact_match`, ...), each with
  its value, and the per-seed values and spread where there are several seeds;
- `before` / `after`: per-inference `Cost` of the reference and of the result (dense net and
  ticket, uniform and adaptive, baseline and searched net, digital and analog);
- `spent`: what producing the run cost (wall and CPU seconds, energy, CO2e, dollars), summed
  over every resumed segment, with how each figure was obtained; the energy's CPU, RAM and
  GPU parts with their method (`energy_parts`), and a training's first-epoch prediction of
  its energy against what it spent (`prediction`);
- `points`: optional rows of a run that has several results (levels of a ticket sweep,
  budgets of a search), each with its own quality and cost;
- `artifacts`: files a user may want (weights, exports, plots) by role, relative to the run.

Technique detail files stay where they are; the record points to them. `frugal show`,
`compare`, `payback` and `report` read only records. The schema is versioned
(`record.schema.json` beside this module); a record of a newer version is refused.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from frugalml.errors import FrugalError

SCHEMA_VERSION = 1
FILENAME = "record.json"
# what a record's `spent` holds: a ledger's total or a fit's tracking carries more (label, region, sources)
SPENT_KEYS = (
    "wall_s",
    "cpu_s",
    "energy_j",
    "co2e_g",
    "usd",
    "segments",
    "notes",
    "counterfactual",
    "energy_parts",
    "prediction",
)
SCHEMA_FILE = Path(__file__).with_name("record.schema.json")


def metric(values: float | list[float], seeds: list[int] | None = None, higher_is_better: bool = True) -> dict:
    """One quality metric: a single value, or per-seed values with their mean and spread."""
    if isinstance(values, (int, float)):
        return {"value": float(values), "higher_is_better": higher_is_better}
    values = [float(v) for v in values]
    if not values:
        raise FrugalError("a quality metric needs at least one value")
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    out = {"value": mean, "higher_is_better": higher_is_better, "values": values, "std": std}
    if seeds is not None:
        out["seeds"] = [int(s) for s in seeds]
    return out


def cost_dict(cost) -> dict | None:
    """A `Cost` (or a dict of its fields) as the record stores it; None stays None."""
    if cost is None:
        return None
    d = cost.to_dict() if hasattr(cost, "to_dict") else dict(cost)
    return {k: v for k, v in d.items() if v is not None and v != {}}


def build(
    kind: str,
    *,
    quality: dict[str, dict],
    config: dict | None = None,
    data: str | dict | None = None,
    model: str | dict | None = None,
    before=None,
    after=None,
    spent: dict | None = None,
    points: list[dict] | None = None,
    artifacts: dict[str, str] | None = None,
    command: str | None = None,
) -> dict:
    """A record as a dict (not yet written). `before`/`after` are `Cost`s or dicts of their fields."""
    from frugalml import __version__

    record = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "frugalml_version": __version__,
        "command": command if command is not None else " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "config": config or {},
        "data": data,
        "model": model,
        "quality": quality,
        "before": cost_dict(before),
        "after": cost_dict(after),
        "spent": {k: v for k, v in (spent or {}).items() if k in SPENT_KEYS},
        "artifacts": {k: str(v) for k, v in (artifacts or {}).items()},
    }
    if points is not None:
        record["points"] = [p | {"cost": cost_dict(p.get("cost"))} for p in points]
    return record


def write(run_dir: str | Path, record: dict) -> Path:
    """Validate `record` against the schema and write `<run_dir>/record.json` atomically."""
    from frugalml.files import to_json, write_text

    text = to_json(record)
    validate(json.loads(text), where=str(run_dir))
    return write_text(Path(run_dir) / FILENAME, text + "\n")


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


def validate(record: Any, where: str = "record") -> dict:
    """FrugalError naming the first problem unless `record` is a valid record of a known version."""
    if not isinstance(record, dict) or "schema_version" not in record:
        raise FrugalError(f"{where} is not a frugalml run record (no schema_version)")
    version = record["schema_version"]
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise FrugalError(
            f"{where} has record schema version {version}, newer than this frugalml understands "
            f"({SCHEMA_VERSION}): upgrade frugalml"
        )
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(record))
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise FrugalError(f"{where}: invalid record at {path}: {error.message}")
    return record


def read(path: str | Path) -> dict:
    """The record of a run directory (or a record.json path), validated; `run` holds its directory."""
    path = Path(path)
    file = path if path.is_file() else path / FILENAME
    if not file.is_file():
        raise FrugalError(f"{path} holds no run (no {FILENAME})")
    try:
        record = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise FrugalError(f"{file} is not valid JSON ({e.msg} at line {e.lineno})") from None
    return validate(record, where=str(file)) | {"run": str(file.parent)}


def find(path: str | Path) -> list[dict]:
    """The records of a run directory, or of every run below a sweep directory (sorted by path;
    runs nested inside another run below it are that run's parts, not listed apart)."""
    path = Path(path)
    if not path.exists():
        raise FrugalError(f"{path} does not exist")
    if (path / FILENAME).is_file() or path.is_file():
        return [read(path)]
    files = sorted(path.rglob(FILENAME))
    if not files:
        raise FrugalError(f"{path} holds no run (no {FILENAME} in it or below it)")
    # a run's own sub-runs (the trainings of a ticket sweep's levels, a video run's stages) belong to it
    dirs = {f.parent for f in files}
    top = [f for f in files if not any(d in dirs for d in f.parent.parents)]
    return [read(f) for f in top]


def primary_metric(record: dict) -> str | None:
    """The metric a run is judged by: the first one it lists."""
    return next(iter(record.get("quality") or {}), None)
