"""Lottery tickets: masks, IMP with rewinding, controls, stability, transfer and export.

    from frugalml.tickets import TicketConfig, find
    result = find(TicketConfig(model="mlp", data="mnist1d", levels=12, rate=0.2), "runs/tickets/lenet")

Torch-heavy submodules load on first use so `import frugalml.tickets` stays light.
"""

from __future__ import annotations

_LAZY = {
    "Mask": "masks",
    "MaskEnforcer": "masks",
    "prune_magnitude": "masks",
    "random_like": "masks",
    "prunable": "masks",
    "TicketConfig": "imp",
    "find": "imp",
    "summarize": "imp",
    "load_ticket": "imp",
    "stability": "instability",
    "transfer": "transferring",
    "export": "exporting",
    "compact": "exporting",
    "to_sparse": "exporting",
    "load_export": "exporting",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"frugalml.tickets.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'frugalml.tickets' has no attribute '{name}'")


__all__ = list(_LAZY)
