"""Ticket transfer (Morcos et al. 2019): a mask and rewind weights found on one task, trained on another.

Compared on the target task, with the same seeds and training settings:
- the transferred ticket (source mask + source rewind weights),
- a ticket found by IMP on the target itself, at the same level,
- random pruning at the same per-layer sparsity (source rewind weights, random mask),
- the dense network on the target (level 0 of the target run).
When the classes differ (e.g. digits 0-4 -> 5-9) the output layer's weights and bias are
re-initialised: a mask and weights tuned to other classes mean nothing there. Its mask
is kept, which at fresh weights is as good as a random mask of the same density.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from frugalml.cost.tracker import Ledger
from frugalml.errors import FrugalError
from frugalml.files import read_json, write_json
from frugalml.tickets import tasks
from frugalml.tickets.imp import (
    MASK,
    METRICS,
    REWIND,
    TicketConfig,
    build_model,
    control_seed,
    final_accuracy,
    find,
    level_cost,
    load_ticket,
    metric_of,
    stats,
    train_masked,
)
from frugalml.tickets.masks import Mask, output_layer, random_like


def same_classes(source: str, target: str) -> bool:
    """True when both specs name the same classes of the same label space."""
    s_name, _, s_cls = tasks.parse(source)
    t_name, _, t_cls = tasks.parse(target)
    s_ds, t_ds = tasks.load(source), tasks.load(target)
    if s_ds.num_classes != t_ds.num_classes:
        return False
    base = {"mnist1d": "digits-10", "digits": "digits-10"}  # both label the ten digits 0..9
    if base.get(s_name, s_name) != base.get(t_name, t_name):
        return False
    return (s_cls or list(range(s_ds.num_classes))) == (t_cls or list(range(t_ds.num_classes)))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text)


def _source_weights(model, rewind_path: Path, reinit_output: bool):
    """Load the ticket's rewind weights, leaving the output layer freshly initialised if asked."""
    from safetensors.torch import load_file

    state = load_file(str(rewind_path))
    out_w = output_layer(model)
    if reinit_output:
        out_b = out_w[: -len("weight")] + "bias"
        state = {k: v for k, v in state.items() if k not in (out_w, out_b)}
    own = model.state_dict()
    bad = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if bad:
        raise FrugalError(
            f"ticket weights '{bad[0]}' have shape {list(state[bad[0]].shape)}, the target model "
            f"needs {list(own[bad[0]].shape)}"
        )
    model.load_state_dict(state, strict=False)
    return model


def _target_mask(model, src_mask: Mask, seed: int) -> Mask:
    """The source mask; an output layer of another size gets a random mask of the source's density."""
    out_w = output_layer(model)
    own = dict(model.named_parameters())[out_w]
    masks = dict(src_mask.masks)
    if tuple(masks[out_w].shape) != tuple(own.shape):
        import torch

        g = torch.Generator().manual_seed(seed)
        keep = round(float(masks[out_w].float().mean()) * own.numel())
        flat = torch.zeros(own.numel(), dtype=torch.bool)
        flat[torch.randperm(own.numel(), generator=g)[:keep]] = True
        masks[out_w] = flat.view_as(own)
    mask = Mask(masks)
    mask.check(model, where="ticket mask")
    return mask


def _run_one(
    kind: str, d: Path, info: dict, cfg: TicketConfig, target: str, reinit_output: bool, out: Path, progress
) -> dict:
    from frugalml.cost.counting import profile

    ds = tasks.load(target)
    seed, level = info["seed"], info["level"]
    run = out / f"seed_{seed}" / kind
    if (run / METRICS).exists():
        return read_json(run / METRICS)
    model = build_model(cfg.model, ds.input_shape, ds.num_classes, init_seed=seed)
    src_mask = Mask.load(d / MASK)
    _source_weights(model, d / REWIND, reinit_output)
    mask = _target_mask(model, src_mask, control_seed(seed, level, "random"))
    if kind == "random":
        mask = random_like(mask, control_seed(seed, level, "random") + 17)
    tcfg = replace(cfg, data=target)
    res = train_masked(model, ds, tcfg, seed, mask, run / "train", progress, f"transfer {kind} seed {seed}")
    prof = profile(model, ds.x_train[:1])
    row = {"kind": kind, "seed": seed, "accuracy": final_accuracy(res), "remaining": mask.remaining()}
    row |= {"params": prof.params, "nonzero_params": prof.nonzero_params}
    row |= {"macs": prof.macs, "macs_effective": prof.macs_effective}
    write_json(run / METRICS, row)
    return row


def transfer(
    ticket: str | Path,
    target: str,
    out: str | Path | None = None,
    reinit_output: bool | None = None,
    adapt: str | None = None,
    progress: bool | None = None,
    executor=None,
) -> dict:
    """The ticket's seeds trained on `target` (and randomly pruned, and IMP run on the target itself),
    each seed's runs independent jobs on `executor` (`executor.parse_executor`; default FRUGAL_EXECUTOR)."""
    from frugalml.executor import parse_executor

    ex = parse_executor(executor)
    refs = load_ticket(ticket)
    info0 = refs[0][1]
    cfg = TicketConfig.from_dict(info0["config"], f"{refs[0][0]}/ticket.json").validate()
    source = info0["data"]
    tgt = tasks.load(target)
    if tuple(tgt.input_shape) != tuple(info0["input_shape"]):
        how = "" if adapt is None else f" (adaptation '{adapt}' is not supported: no adaptation is implemented)"
        raise FrugalError(
            f"target data '{target}' has input shape {list(tgt.input_shape)}, the ticket was found on "
            f"{info0['input_shape']} ({source}); transfer needs the same input shape{how}"
        )
    auto = not same_classes(source, target)
    reinit = auto if reinit_output is None else reinit_output
    if not reinit and tgt.num_classes != info0["num_classes"]:
        raise FrugalError(
            f"target has {tgt.num_classes} classes, the ticket {info0['num_classes']}: "
            "the output layer must be re-initialised"
        )
    out = Path(out) if out else Path(refs[0][0]).parent / "transfer" / _slug(target)
    with Ledger(out, children=True, label="tickets.transfer") as ledger:
        result, cost = _transfer(ticket, refs, cfg, target, (reinit, reinit_output, auto), out, progress, ex, ledger)
    write_transfer_record(out, result, cost, cfg, ledger.total())
    return result


def _transfer(ticket, refs, cfg: TicketConfig, target: str, how: tuple, out: Path, progress, ex, ledger):
    """The transfer's result (as `result.json` holds it) and the per-inference cost of each of its four nets."""
    from frugalml.executor import run_jobs

    reinit, reinit_output, auto = how
    info0 = refs[0][1]
    source, level = info0["data"], info0["level"]
    rows = {"transferred": [], "random": []}
    common = {
        "cfg": cfg,
        "target": target,
        "reinit_output": reinit,
        "out": out,
        "progress": False if ex.parallel else progress,
    }
    jobs = [common | {"kind": kind, "d": d, "info": info} for d, info in refs for kind in rows]
    done = run_jobs(_run_one, jobs, ex, root=out, inputs=sorted({str(d) for d, _ in refs}), ledger=ledger)
    for job, row in zip(jobs, done, strict=True):
        rows[job["kind"]].append(row)
    seeds = [info["seed"] for _, info in refs]
    # IMP on the target with the same settings, to the same level, for the same seeds.
    tcfg = replace(
        cfg, data=target, levels=level, controls=[], first_seed=min(seeds), seeds=max(seeds) - min(seeds) + 1
    )
    own = find(tcfg, out / "target_run", progress=progress, executor=ex)
    target_level = own["levels"][level]
    result = {
        "ticket": str(ticket),
        "source": source,
        "target": target,
        "level": level,
        "remaining": rows["transferred"][0]["remaining"],
        "reinit_output": reinit,
        "reinit_output_reason": "explicit"
        if reinit_output is not None
        else ("classes differ" if auto else "same classes"),
        "transferred_accuracy": stats([r["accuracy"] for r in rows["transferred"]]),
        "target_ticket_accuracy": target_level["accuracy"],
        "random_accuracy": stats([r["accuracy"] for r in rows["random"]]),
        "target_dense_accuracy": own["dense_accuracy"],
        "seeds": seeds,
        "out": str(out),
    }
    write_json(out / "result.json", result)
    cost = {
        "transferred": _mean_cost(rows["transferred"]),
        "target_ticket": level_cost(target_level),
        "random": _mean_cost(rows["random"]),
        "target_dense": level_cost(own["levels"][0]),
    }
    return result, cost


def _mean_cost(rows: list[dict]) -> dict | None:
    """Per-inference cost of the transferred (or random) tickets, mean over seeds (None for older rows)."""
    if any("macs_effective" not in r for r in rows):
        return None
    mean = lambda key: round(sum(r[key] for r in rows) / len(rows))  # noqa: E731
    return level_cost({k: mean(k) for k in ("params", "nonzero_params", "macs", "macs_effective")})


def write_transfer_record(out: Path, result: dict, cost: dict, cfg: TicketConfig, spent: dict) -> Path:
    """`record.json` of a transfer: transferred accuracy per seed beside the target's dense net, ticket, random."""
    from frugalml.report import record

    seeds = result["seeds"]
    acc = {
        "accuracy": metric_of(result["transferred_accuracy"], seeds),
        "target_ticket_accuracy": metric_of(result["target_ticket_accuracy"], seeds),
        "random_pruning_accuracy": metric_of(result["random_accuracy"], seeds),
        "target_dense_accuracy": metric_of(result["target_dense_accuracy"], seeds),
    }
    points = [
        {"label": label, "quality": {"accuracy": acc[key]}, "cost": cost[part]}
        for label, key, part in (
            ("transferred ticket", "accuracy", "transferred"),
            ("ticket found on target", "target_ticket_accuracy", "target_ticket"),
            ("random pruning", "random_pruning_accuracy", "random"),
            ("dense on target", "target_dense_accuracy", "target_dense"),
        )
    ]
    rec = record.build(
        "tickets.transfer",
        quality=acc,
        config=cfg.to_dict() | {"ticket": result["ticket"], "target": result["target"], "level": result["level"]},
        data=result["target"],
        model=cfg.model,
        before=cost["target_dense"],
        after=cost["transferred"],
        spent=spent,
        points=points,
        artifacts={"result": "result.json", "target_run": "target_run", "spent": "spent.json"},
    )
    return record.write(out, rec)
