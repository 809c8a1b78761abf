"""The technique packages of frugalml, in one table.

Each technique is a package `frugalml.<name>` with a `cli` module (a typer `app`, mounted as
`frugal <name>`), a `demo` module (`demo(out, quick, console) -> list[dict]`, run by
`frugal demo`) and, for those that offer them, modules that register search spaces on import
(`frugalml.models.space`). `cli.py`, `demo.py` and the search-space registry read this table,
so a new technique is added here once.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Technique:
    name: str
    help: str
    spaces: tuple[str, ...] = ()  # modules that register search spaces on import

    @property
    def cli(self) -> str:
        return f"frugalml.{self.name}.cli"

    @property
    def demo(self) -> str:
        return f"frugalml.{self.name}.demo"


TECHNIQUES = (
    Technique("tickets", "Lottery tickets: find, test, transfer, export."),
    Technique("accel", "Dataflow accelerator energy model (Eyeriss-style)."),
    Technique("nas", "Hardware-aware architecture search.", spaces=("frugalml.nas.cnn", "frugalml.nas.transformer")),
    Technique("video", "Adaptive video recognition (AR-Net)."),
    Technique("analog", "Analog training on crossbar arrays."),
    Technique("pointcloud", "3D point-voxel networks.", spaces=("frugalml.pointcloud.space",)),
)


def space_modules() -> list[str]:
    """Every module that registers a search space, in table order."""
    return [m for t in TECHNIQUES for m in t.spaces]


def optional_import(module: str) -> ModuleType | None:
    """`module`, or None when it (or a package above it) is not there: a technique not built yet.

    An import error from inside the module (a missing dependency) is raised as it is."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            return None
        raise
