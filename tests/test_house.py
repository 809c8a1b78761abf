"""The import rules of the house (CONTRIBUTING.md), read from the source with `ast`.

Every import counts: at module top or inside a function, `from frugalml import x`, and
`importlib.import_module("frugalml....")` with a literal name. A failure lists each
offending `module -> import`.
"""

import ast
import re
from pathlib import Path

from frugalml.techniques import TECHNIQUES

SRC = Path(__file__).resolve().parents[1] / "src"
TECHNIQUE_PACKAGES = {t.name for t in TECHNIQUES}
SHARED = {"errors", "executor", "files", "techniques", "cost", "data", "models", "report", "train"}
# A module imports only from its own floor or below.
FLOORS = {
    "errors": 0,
    "executor": 0,
    "files": 0,
    "techniques": 0,
    "cost": 1,
    "data": 2,
    "models": 2,
    "report": 2,
    "train": 3,
    "distributed": 3,  # data-parallel training: torchrun's world, sharding, gradient all_reduce
    "trainconfig": 3,  # TrainConfig alone, torch-free, so CLI options can be built from it cheaply
    **{name: 4 for name in TECHNIQUE_PACKAGES},
    "demo": 5,
    "cli": 5,
    "frugalml": 5,  # the package's own __init__
}
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted((SRC / "frugalml").rglob("*.py"))}


def _imports(module: str, tree: ast.Module) -> set[str]:
    """Every module `module` imports (absolute names), wherever the import statement stands."""
    package = module.split(".") if _is_package(module) else module.split(".")[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            # `from frugalml import models` imports the module frugalml.models
            out |= {f"{base}.{a.name}" if base == "frugalml" else base for a in node.names}
        elif isinstance(node, ast.Call) and _is_import_call(node.func) and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                out.add(arg.value)
    return out


def _is_package(module: str) -> bool:
    return (SRC / Path(*module.split(".")) / "__init__.py").exists()


def _is_import_call(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in ("import_module", "__import__")


def _part(name: str) -> str | None:
    """The house part of a frugalml module name (`frugalml.nas.cnn` -> `nas`), None outside frugalml."""
    parts = name.split(".")
    if parts[0] != "frugalml":
        return None
    return parts[1] if len(parts) > 1 else "frugalml"


def _edges():
    """(module, its part, imported name, the imported part) for every frugalml import in src/."""
    for module, tree in _sources().items():
        for name in sorted(_imports(module, tree)):
            if _part(name) is not None:
                yield module, _part(module), name, _part(name)


def _report(bad: list[str], rule: str) -> str:
    return f"{rule}:\n  " + "\n  ".join(bad)


def test_a_technique_package_imports_no_other_technique_package():
    bad = [
        f"{m} -> {n}"
        for m, part, n, target in _edges()
        if part in TECHNIQUE_PACKAGES and target in TECHNIQUE_PACKAGES and target != part
    ]
    assert not bad, _report(bad, "technique packages stand side by side and do not import each other")


def test_a_technique_package_names_no_other_technique_module_in_a_string():
    """A module named in a string (a plug-in list, a lazy import) is a dependency no import graph shows."""
    module_name = re.compile(r"frugalml(\.\w+)+(:\w+)?")
    bad = [
        f"{m} -> '{node.value}'"
        for m, tree in _sources().items()
        if _part(m) in TECHNIQUE_PACKAGES
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and module_name.fullmatch(node.value)
        and _part(node.value) in TECHNIQUE_PACKAGES - {_part(m)}
    ]
    assert not bad, _report(bad, "technique packages name no other technique's modules")


def test_the_shared_floors_import_no_technique_package():
    bad = [f"{m} -> {n}" for m, part, n, target in _edges() if part in SHARED and target in TECHNIQUE_PACKAGES]
    assert not bad, _report(bad, "shared modules must not depend on a technique")


def test_cost_imports_nothing_above_it():
    above = {"data", "models", "report", "train"}
    bad = [f"{m} -> {n}" for m, part, n, target in _edges() if part == "cost" and target in above]
    assert not bad, _report(bad, "cost sits below data, models, report and train")


def test_each_module_imports_only_from_its_own_floor_or_below():
    unknown = sorted({part for _m, part, _n, _t in _edges() if part not in FLOORS})
    assert not unknown, f"parts of frugalml with no floor in this test (add them to FLOORS): {unknown}"
    bad = [f"{m} -> {n}" for m, part, n, target in _edges() if FLOORS.get(target, 0) > FLOORS[part]]
    assert not bad, _report(bad, "imports reaching a higher floor")


def test_nothing_imports_the_command_line():
    bad = [f"{m} -> {n}" for m, _part_, n, _t in _edges() if n == "frugalml.cli" or n.startswith("frugalml.cli.")]
    assert not bad, _report(bad, "frugalml.cli is the top: nothing imports it")


def test_only_the_command_line_parses_argv():
    bad = [
        f"{m} -> {n}"
        for m, tree in _sources().items()
        for n in sorted(_imports(m, tree))
        if n in ("argparse", "optparse", "getopt")
    ]
    assert not bad, _report(bad, "argv is parsed by typer in cli.py and <package>/cli.py only")


def test_no_function_is_longer_than_80_lines():
    bad = [
        f"{m}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for m, tree in _sources().items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not bad, _report(bad, f"functions longer than {MAX_FUNCTION_LINES} lines")
