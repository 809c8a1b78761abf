"""README figures tied to the results files they come from.

A benchmark figure in README.md sits in a marked block that names its source::

    <!-- figures: benchmarks/results/video_arnet.json#summary benchmarks/results/x.json -->
    ... prose or a table ...
    <!-- /figures -->

Every number in the block (outside `code spans`, and not part of a name such as LeNet-300-100,
host-1t or rpi4) must be one of the numeric values stored in the named files (or under the key
path after `#`, dots between keys), rounded to as many decimals as the README quotes. Signs are
ignored ("0.2 points below" quotes -0.002). How a quoted unit may relate to a stored value:

    bare number, %, pt/pts/point/points   the value, or 100x it if it is a fraction (|value| <= 2:
                                            fraction -> percent / points)
    x (a ratio)                             the value, or its reciprocal ("1.45x slower" of a 0.69 speedup)
    us / ms                                 the value, or 1e6 / 1e3 x it (seconds -> us / ms)
    s, CPU-s, MiB                           the value
    GiB                                     the value / 1024 (MiB -> GiB)
    MMACs                                   the value, or 1e-6 x it (MACs -> MMACs)
    A min B s                               A * 60 + B, a value in seconds
    1,234                                   thousands separators are dropped
    a bare number after "(us)" on its line  takes that unit (a table row "latency, batch 1 (us)  70.6")

Numeric dict keys count as stored values ({"256": {...}} stores 256).

    python benchmarks/readme_figures.py [README.md] [-v]    # lists problems (-v: every figure); exit 1 if any
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- figures: (?P<src>[^>]*?) -->(?P<body>.*?)<!-- /figures -->", re.S)
CODE = re.compile(r"(?<!`)`(?!`)[^`\n]*`")  # an inline code span; fenced example output is checked
# names with digits in them: LeNet-300-100, MNIST-1D, host-1t, NSGA-II, w2-d1, rpi4, s0, v100
NAME = re.compile(r"\b[A-Za-z][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)+\b|\b[A-Za-z]+\d\w*")
MIN_S = re.compile(r"(?<![\w.,])(\d+) min (\d+) s\b")
NUMBER = re.compile(r"(?<![\w.,])[-+−]?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\d,]*\.?\d|[A-Za-wyz_])")
ROW_UNIT = re.compile(r"\((?P<unit>us|ms|s|MiB|GiB|MMACs|%)\)")
UNIT = re.compile(r"\s?(?P<unit>%|x\b|pts?\b|points?\b|us\b|µs\b|ms\b|min\b|CPU-s\b|s\b|MiB\b|GiB\b|MMACs\b)")
SCALES = {
    "": (1, 100),
    "%": (1, 100),
    "pt": (1, 100),
    "pts": (1, 100),
    "point": (1, 100),
    "points": (1, 100),
    "x": (1, "reciprocal"),
    "us": (1, 1e6),
    "µs": (1, 1e6),
    "ms": (1, 1e3),
    "s": (1,),
    "CPU-s": (1,),
    "min": (1 / 60,),
    "MiB": (1,),
    "GiB": (1 / 1024,),
    "MMACs": (1, 1e-6),
}


@dataclass(frozen=True)
class Figure:
    text: str  # as quoted
    value: float  # absolute, separators dropped
    decimals: int
    unit: str


@dataclass(frozen=True)
class Block:
    sources: tuple[str, ...]
    body: str
    start: int  # offset of the body in the README


def blocks(readme: str) -> list[Block]:
    return [Block(tuple(m["src"].split()), m["body"], m.start("body")) for m in BLOCK.finditer(readme)]


def figures(body: str) -> list[Figure]:
    """The numbers a block quotes, in order of appearance (composite `A min B s` first)."""
    text = NAME.sub(lambda m: " " * len(m[0]), CODE.sub(lambda m: " " * len(m[0]), body))
    found: list[tuple[int, Figure]] = []
    for m in MIN_S.finditer(text):
        found.append((m.start(), Figure(m[0], int(m[1]) * 60 + int(m[2]), 0, "s")))
    text = MIN_S.sub(lambda m: " " * len(m[0]), text)
    for m in NUMBER.finditer(text):
        num = m["num"].replace(",", "")
        unit = UNIT.match(text, m.end())
        decimals = len(num.partition(".")[2])
        name = unit["unit"] if unit else _row_unit(text, m.start())
        found.append((m.start(), Figure(m[0] + (unit[0] if unit else ""), float(num), decimals, name)))
    return [f for _, f in sorted(found, key=lambda p: p[0])]


def _row_unit(text: str, at: int) -> str:
    """The unit a "(us)" earlier on the line gives a bare number at `at`, else ""."""
    units = ROW_UNIT.findall(text, text.rfind("\n", 0, at) + 1, at)
    return units[-1] if units else ""


def _number(key: str) -> list[float]:
    try:
        value = float(key)
    except ValueError:
        return []
    return [value] if math.isfinite(value) else []


def flatten(obj, prefix: str = "") -> list[tuple[str, float]]:
    """Every numeric value under `obj` (booleans excluded; numeric dict keys included) with its key path."""
    if isinstance(obj, dict):
        keys = [(f"{prefix}.{k} (key)", v) for k in obj for v in _number(k)]
        return keys + [kv for k, v in obj.items() for kv in flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(obj, list):
        return [kv for i, v in enumerate(obj) for kv in flatten(v, f"{prefix}[{i}]")]
    if isinstance(obj, (int, float)) and not isinstance(obj, bool) and math.isfinite(obj):
        return [(prefix, float(obj))]
    return []


def pool(sources: tuple[str, ...], root: Path = ROOT) -> list[tuple[str, float]]:
    """The values a block may quote: each source is `path.json` or `path.json#key.key`."""
    values = []
    for src in sources:
        path, _, keys = src.partition("#")
        obj = json.loads((root / path).read_text())
        for key in filter(None, keys.split(".")):
            obj = obj[int(key)] if isinstance(obj, list) else obj[key]
        values += flatten(obj, f"{path}#{keys}" if keys else path)
    return values


def scaled(value: float, scale) -> float:
    """`value` as a quoted unit shows it; NaN where the scale does not apply."""
    if scale == "reciprocal":
        return 1 / abs(value) if value else math.nan
    if scale == 100 and abs(value) > 2:  # only a fraction (up to 200%) is quoted as a percentage
        return math.nan
    return abs(value) * scale


def match(fig: Figure, values: list[tuple[str, float]]) -> str | None:
    """The key path of a stored value `fig` quotes (rounded to its decimals; the plain value
    preferred over a scaled one), or None."""
    tol = 0.5 * 10.0**-fig.decimals * (1 + 1e-9) + 1e-12
    for scale in SCALES[fig.unit]:
        for key, v in values:
            if abs(scaled(v, scale) - fig.value) <= tol:
                return key
    return None


def check(readme: str, root: Path = ROOT, verbose: bool = False) -> list[str]:
    """Problems (one line each): a block without figures, a missing source, a figure not found."""
    problems, lines = [], []
    if readme.count("<!-- figures:") != len(blocks(readme)) or readme.count("<!-- /figures -->") != len(blocks(readme)):
        problems.append("unbalanced <!-- figures: ... --> / <!-- /figures --> markers")
    for block in blocks(readme):
        line = readme.count("\n", 0, block.start) + 1
        try:
            values = pool(block.sources, root)
        except (OSError, KeyError, IndexError, ValueError) as e:
            problems.append(f"README line {line}: cannot read {' '.join(block.sources)}: {e!r}")
            continue
        figs = figures(block.body)
        if not figs:
            problems.append(f"README line {line}: block quotes no figure")
        for fig in figs:
            key = match(fig, values)
            if key is None:
                problems.append(f"README line {line}: {fig.text!r} not in {' '.join(block.sources)}")
            lines.append(f"  {fig.text!r:>16} <- {key}")
    if verbose:
        print("\n".join(lines))
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    files = [a for a in args if a != "-v"]
    readme = Path(files[0]) if files else ROOT / "README.md"
    problems = check(readme.read_text(), verbose="-v" in args)
    print("\n".join(problems) if problems else f"{readme}: every figure found in its results file")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
