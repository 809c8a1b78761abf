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

Found somewhere is not enough: a results file holds hundreds of numbers, so a figure edited by
one in its last digit would often still be found. Each figure is therefore also *bound* to the
one stored value it quotes: `benchmarks/readme_figures.lock.json` lists, block by block, every
figure with the key path and the scale it was found under, and the check requires each figure to
round from the value at its bound key. Editing a figure, or rerunning a benchmark whose new
value no longer rounds to the quoted one, is reported; after writing or rewording a block, bind
it again (`--bind` keeps every binding that still holds and binds a new figure to the first
value it quotes that no other figure of the block is bound to - read the lock's diff to see
that each points where it should, and correct a key by hand where it does not).

    python benchmarks/readme_figures.py [README.md] [-v]    # lists problems (-v: every figure); exit 1 if any
    python benchmarks/readme_figures.py --bind              # (re)writes the lock from README.md
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = Path(__file__).with_name("readme_figures.lock.json")
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


def quotes(fig: Figure, value: float, scale) -> bool:
    """Whether `fig` is `value` under `scale`, rounded to the figure's decimals."""
    return abs(scaled(value, scale) - fig.value) <= 0.5 * 10.0**-fig.decimals * (1 + 1e-9) + 1e-12


def find(
    fig: Figure, values: list[tuple[str, float]], prefer: str | None = None, taken: set[str] = frozenset()
) -> tuple[str, object] | None:
    """(key path, scale) of a stored value `fig` quotes - `prefer`'s key if it still does, else the
    first not in `taken`, else the first; the plain value before a scaled one - or None."""
    if prefer is not None:
        found = find(fig, [(k, v) for k, v in values if k == prefer])
        if found:
            return found
    for pick in (lambda k: k not in taken, lambda k: True):
        for scale in SCALES[fig.unit]:
            for key, v in values:
                if pick(key) and quotes(fig, v, scale):
                    return key, scale
    return None


def match(fig: Figure, values: list[tuple[str, float]]) -> str | None:
    """The key path of a stored value `fig` quotes, or None."""
    found = find(fig, values)
    return found[0] if found else None


def read_lock(path: Path = LOCK) -> list[dict]:
    return json.loads(path.read_text())["blocks"] if path.exists() else []


def write_lock(entries: list[dict], readme: str, path: Path = LOCK) -> None:
    """One line per figure, so a diff shows which figure moved to which key."""
    lines = [f'{{"readme": {json.dumps(readme)}, "blocks": [']
    for i, e in enumerate(entries):
        figs = ",\n".join(f"   {json.dumps(f)}" for f in e["figures"])
        head = f' {{"sources": {json.dumps(e["sources"])}, "rank": {e["rank"]}, "figures": [\n'
        lines.append(head + figs + "\n ]}" + ("," if i < len(entries) - 1 else ""))
    lines.append("]}")
    path.write_text("\n".join(lines) + "\n")


def bind(readme: str, root: Path = ROOT, lock: list[dict] | None = None) -> list[dict]:
    """Every figure of every block with the key and scale it quotes; bindings in `lock` that still
    hold are kept (a block is matched by its sources and its rank among blocks with the same ones)."""
    old = {(e["sources"], e["rank"]): e["figures"] for e in (lock or [])}
    out, seen = [], {}
    for block in blocks(readme):
        src = " ".join(block.sources)
        rank = seen[src] = seen.get(src, -1) + 1
        values = pool(block.sources, root)
        before = old.get((src, rank), [])
        figs, taken = [], set()
        for i, fig in enumerate(figures(block.body)):
            # a binding that still holds is kept where the figure stands at the same place in the block
            prefer = before[i]["key"] if i < len(before) and before[i]["text"] == fig.text else None
            if prefer is None:  # moved: the binding of the same text elsewhere in the block, if still free
                prefer = next((b["key"] for b in before if b["text"] == fig.text and b["key"] not in taken), None)
            found = find(fig, values, prefer, taken)
            if found:
                taken.add(found[0])
                figs.append({"text": fig.text, "key": found[0], "scale": str(found[1])})
        out.append({"sources": src, "rank": rank, "figures": figs})
    return out


def check(
    readme: str, root: Path = ROOT, verbose: bool = False, lock: list[dict] | None = None, bound: bool = True
) -> list[str]:
    """Problems (one line each): a block without figures, a missing source, a figure not found, a
    figure that does not round from the value it is bound to (`bound=False` skips that step)."""
    problems, lines = [], []
    if readme.count("<!-- figures:") != len(blocks(readme)) or readme.count("<!-- /figures -->") != len(blocks(readme)):
        problems.append("unbalanced <!-- figures: ... --> / <!-- /figures --> markers")
    locked = {(e["sources"], e["rank"]): e["figures"] for e in (read_lock() if lock is None else lock)}
    seen: dict[str, int] = {}
    for block in blocks(readme):
        line = readme.count("\n", 0, block.start) + 1
        src = " ".join(block.sources)
        rank = seen[src] = seen.get(src, -1) + 1
        try:
            values = pool(block.sources, root)
        except (OSError, KeyError, IndexError, ValueError) as e:
            problems.append(f"README line {line}: cannot read {src}: {e!r}")
            continue
        figs = figures(block.body)
        if not figs:
            problems.append(f"README line {line}: block quotes no figure")
        for fig in figs:
            key = match(fig, values)
            if key is None:
                problems.append(f"README line {line}: {fig.text!r} not in {src}")
            lines.append(f"  {fig.text!r:>16} <- {key}")
        if bound and not any(f"README line {line}:" in p for p in problems):
            problems += check_bound(figs, locked.get((src, rank)), dict(values), f"README line {line}")
    if verbose:
        print("\n".join(lines))
    return problems


def check_bound(figs: list[Figure], entry: list[dict] | None, values: dict[str, float], where: str) -> list[str]:
    """Each figure against the stored value the lock binds it to."""
    rebind = "bind it: python benchmarks/readme_figures.py --bind"
    if entry is None:
        return [f"{where}: block not in {LOCK.name}; {rebind}"]
    if [f.text for f in figs] != [f["text"] for f in entry]:
        i = next((i for i, (f, e) in enumerate(zip(figs, entry)) if f.text != e["text"]), min(len(figs), len(entry)))
        now = repr(figs[i].text) if i < len(figs) else "nothing"
        was = repr(entry[i]["text"]) if i < len(entry) else "nothing"
        return [f"{where}: figure {i + 1} is {now} where {was} was bound; {rebind}"]
    problems = []
    for fig, b in zip(figs, entry):
        scale = next((s for s in SCALES[fig.unit] if str(s) == b["scale"]), None)
        if b["key"] not in values or scale is None or not quotes(fig, values[b["key"]], scale):
            stored = values.get(b["key"])
            problems.append(f"{where}: {fig.text!r} is not {b['key']} ({stored}, scale {b['scale']})")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    files = [a for a in args if a not in ("-v", "--bind")]
    readme = Path(files[0]) if files else ROOT / "README.md"
    if "--bind" in args:
        problems = check(readme.read_text(), bound=False)
        if problems:  # bind only figures that are all found somewhere
            print("\n".join(problems))
            return 1
        entries = bind(readme.read_text(), lock=read_lock())
        write_lock(entries, readme.name)
        print(f"{LOCK}: {sum(len(e['figures']) for e in entries)} figures in {len(entries)} blocks bound")
        return 0
    problems = check(readme.read_text(), verbose="-v" in args)
    print("\n".join(problems) if problems else f"{readme}: every figure found in its results file")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
