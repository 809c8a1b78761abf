"""Evaluate a trained run: accuracy, counted FLOPs and measured wall-clock per video for the
adaptive model and every baseline, plus the evidence that the policy learned where to spend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from frugalml.errors import FrugalError
from frugalml.video.infer import (
    adaptive_logits,
    apply_backbones,
    flops_table,
    in_chunks,
    interleaved_ms,
    oracle_actions,
    policy_actions,
    random_actions,
    uniform_logits,
    video_flops,
)
from frugalml.video.model import resize


def _quartiles(values: torch.Tensor) -> list[float]:
    """The first and third quartiles: the spread of a per-clip ratio."""
    q = torch.quantile(values.double(), torch.tensor([0.25, 0.75], dtype=torch.float64))
    return [float(q[0]), float(q[1])]


def _acc(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(1) == y).float().mean())


def action_usage(actions: torch.Tensor, names: list[str]) -> dict:
    """Share of the policy's decisions (frames not skipped over) per action, and frame shares."""
    decided = actions[actions >= 0]
    n = max(len(decided), 1)
    usage = {name: float((decided == i).sum()) / n for i, name in enumerate(names)}
    total = actions.numel()
    usage["frames_skipped_over"] = float((actions < 0).sum()) / total
    return usage


def evidence(
    actions: torch.Tensor, informative: torch.Tensor, min_res: torch.Tensor, flops: torch.Tensor, resolutions: list[int]
) -> dict:
    """Where the policy spent: per-frame choices against the per-frame ground truth."""
    nb = len(resolutions)
    processed = (actions >= 0) & (actions < nb)
    top = actions == 0
    inf, uninf = informative, ~informative

    def rate(mask, cond):
        return float((mask & cond).sum()) / max(int(cond.sum()), 1)

    out = {
        "top_res_rate_informative": rate(top, inf),
        "top_res_rate_uninformative": rate(top, uninf),
        "processed_rate_informative": rate(processed, inf),
        "processed_rate_uninformative": rate(processed, uninf),
        "skipped_rate_informative": rate(~processed, inf),
        "skipped_rate_uninformative": rate(~processed, uninf),
    }
    out["top_res_ratio"] = out["top_res_rate_informative"] / max(out["top_res_rate_uninformative"], 1e-9)
    chosen_res = torch.zeros_like(actions)
    for b, r in enumerate(resolutions):
        chosen_res[actions == b] = r
    table = {}
    for need in sorted({int(v) for v in min_res[inf].unique()}, reverse=True):
        rows = inf & (min_res == need)
        counts = {f"res{r}": int(((chosen_res == r) & rows).sum()) for r in resolutions}
        counts["skipped"] = int((~processed & rows).sum())
        counts["at_or_above_needed"] = rate(chosen_res >= need, rows)
        table[f"needs_{need}"] = counts
    out["chosen_vs_needed"] = table
    n_inf = informative.sum(1)
    per = {}
    for k in sorted({int(v) for v in n_inf.unique()}):
        sel = n_inf == k
        per[str(k)] = {"videos": int(sel.sum()), "gflops_per_video": float(flops[sel].mean()) / 1e9}
    out["gflops_vs_informative_frames"] = per
    if n_inf.float().std() > 0 and flops.std() > 0:
        out["gflops_informative_correlation"] = float(torch.corrcoef(torch.stack([n_inf.double(), flops]))[0, 1])
    return out


@torch.no_grad()
def frame_accuracy(model, x: torch.Tensor, y: torch.Tensor, informative: torch.Tensor, min_res: torch.Tensor) -> dict:
    """Each backbone alone on single informative frames, by the resolution the frame needs:
    {"res64": {"needs_64": accuracy, ...}, ...} against the clip's label. A backbone trained to its
    potential is accurate on the frames its resolution can read and near chance on the others."""
    vid, t = informative.nonzero(as_tuple=True)
    frames, labels, need = x[vid, t], y[vid], min_res[vid, t]
    out = {}
    for b, r in enumerate(model.cfg.resolutions):
        pred = torch.cat(
            [model.backbones[b](resize(frames[i : i + 256], r)).argmax(1) for i in range(0, len(frames), 256)]
        )
        right = pred == labels
        out[f"res{r}"] = {f"needs_{n}": float(right[need == n].float().mean()) for n in sorted(need.unique().tolist())}
    return out


@dataclass
class _Run:
    """A loaded run's models and test clips, and the learned policy's actions on them."""

    cfg: object
    model: object
    uniform: object
    x: torch.Tensor
    y: torch.Tensor
    table: object
    actions: torch.Tensor
    informative: torch.Tensor | None
    seed: int
    run_dir: str = ""
    num_classes: int = 0


def evaluate_run(
    run: str | Path,
    latency_videos: int = 40,
    random_draws: int = 3,
    seed: int = 0,
    plots: bool = True,
    latency_batch: int = 8,
) -> dict:
    from frugalml.video.training import load_run

    cfg, model, uniform, ds = load_run(run)
    x, y = ds.x_test, ds.y_test
    names = model.action_names()
    table = flops_table(model, cfg.frames)
    actions = in_chunks(lambda v: policy_actions(model, v), x)
    logits = in_chunks(lambda v, a: apply_backbones(model, v, a), x, actions)
    flops = video_flops(table, actions)
    result = {
        "run_dir": str(run),
        "data": cfg.data,
        "test_clips": len(y),
        "num_classes": ds.num_classes,
        "accuracy": _acc(logits, y),
        "gflops_per_video": float(flops.mean()) / 1e9,
        "action_usage": action_usage(actions, names),
        "flops": table.to_dict(),
    }
    ev = _Run(
        cfg, model, uniform, x, y, table, actions, ds.info.get("informative_test"), seed, str(run), ds.num_classes
    )
    # every timed function takes a slice of test clips and runs them as one batch
    fns = {"adaptive": lambda sl: adaptive_logits(model, x[sl])}
    with torch.no_grad():
        baselines = _uniform_baselines(ev, fns)
        baselines["random"] = _random_baseline(ev, fns, random_draws)
        if ev.informative is not None:
            baselines["oracle"] = _oracle_baseline(ev, fns)
    _add_latency(result, ev, fns, baselines, latency_videos, latency_batch)
    full = f"uniform_{cfg.resolutions[0]}"
    result["gflops_ratio_vs_uniform_full"] = result["gflops_per_video"] / baselines[full]["gflops_per_video"]
    result["baselines"] = baselines
    if ev.informative is not None:
        min_res = ds.info["min_res_test"]
        result["evidence"] = evidence(actions, ev.informative, min_res, flops, list(cfg.resolutions))
        result["evidence"]["frame_accuracy"] = {
            name: frame_accuracy(m, x, y, ev.informative, min_res)
            for name, m in (("adaptive", model), ("uniform", uniform))
        }
    else:
        result["evidence"] = None
    if plots:
        from frugalml.video.plots import plot_choices

        result["plots"] = [str(plot_choices(Path(run) / "choices.png", x, actions, ev.informative, names, y))]
    return result


def _uniform_baselines(ev: _Run, fns: dict) -> dict:
    """Each backbone at its fixed resolution on every frame, trained as long as the adaptive model
    (stage 1 + as many epochs as stage 3); adds each one's timed function to `fns`. Beside it, the
    accuracy of stage 1 alone (`stage1_accuracy`: the baseline AR-Net's recipe compares against)."""
    stage1 = _stage1_model(ev)
    baselines = {}
    for b, r in enumerate(ev.cfg.resolutions):
        key = f"uniform_{r}"
        baselines[key] = {
            "accuracy": _acc(in_chunks(lambda v, b=b: uniform_logits(ev.uniform, v, b), ev.x), ev.y),
            "gflops_per_video": ev.table.uniform[b] / 1e9,
        }
        if stage1 is not None:
            s1 = in_chunks(lambda v, b=b: uniform_logits(stage1, v, b), ev.x)
            baselines[key]["stage1_accuracy"] = _acc(s1, ev.y)
        fns[key] = lambda sl, b=b: uniform_logits(ev.uniform, ev.x[sl], b)
    return baselines


def _stage1_model(ev: _Run):
    """The stage-1 backbones of the run, or None for a run whose uniform baselines are stage 1's."""
    from frugalml.train import load_weights
    from frugalml.video.training import build_model

    run = Path(ev.run_dir)
    if not (run / "uniform.safetensors").is_file():
        return None
    model = build_model(ev.cfg, _Shapes(ev.x, ev.num_classes))
    return load_weights(model, run / "stage1.safetensors").eval()


@dataclass
class _Shapes:
    """What `build_model` reads of a dataset."""

    x_train: torch.Tensor
    num_classes: int


def _random_baseline(ev: _Run, fns: dict, draws: int) -> dict:
    """A random policy with the learned policy's action mix, on the same final backbones; adds its timed function."""
    model, x, y, cfg = ev.model, ev.x, ev.y, ev.cfg
    nb = model.num_backbones
    counts = torch.stack([(ev.actions == i).sum() for i in range(model.num_actions)]).double()
    mix = counts / counts.sum()
    gen = torch.Generator().manual_seed(ev.seed)
    accs, gfl = [], []
    for _ in range(draws):
        ra = random_actions(mix, len(y), cfg.frames, cfg_skips(model), nb, gen)
        accs.append(_acc(in_chunks(lambda v, a: apply_backbones(model, v, a), x, ra), y))
        gfl.append(float(video_flops(ev.table, ra, with_policy=False).mean()) / 1e9)
    rgen = torch.Generator().manual_seed(ev.seed + 1)

    def random_path(sl):
        v = x[sl]
        return apply_backbones(model, v, random_actions(mix, len(v), cfg.frames, cfg_skips(model), nb, rgen))

    fns["random"] = random_path
    return {
        "accuracy": sum(accs) / len(accs),
        "accuracy_draws": accs,
        "gflops_per_video": sum(gfl) / len(gfl),
        "action_mix": mix.tolist(),
    }


def _oracle_baseline(ev: _Run, fns: dict) -> dict:
    """The policy that processes exactly the informative frames; adds its timed function."""
    model, informative = ev.model, ev.informative
    oa = oracle_actions(informative)
    gf = float(video_flops(ev.table, oa, with_policy=False).mean()) / 1e9
    oracle_logits = in_chunks(lambda v, a: apply_backbones(model, v, a), ev.x, oa)
    fns["oracle"] = lambda sl: apply_backbones(model, ev.x[sl], oracle_actions(informative[sl]))
    return {"accuracy": _acc(oracle_logits, ev.y), "gflops_per_video": gf}


def _add_latency(result: dict, ev: _Run, fns: dict, baselines: dict, latency_videos: int, latency_batch: int) -> None:
    """Time every function in `fns` per clip and per batch of clips, interleaved; into `result` and `baselines`."""
    n_lat = min(latency_videos, len(ev.y))
    videos = [slice(i, i + 1) for i in range(n_lat)]
    timing = interleaved_ms(fns, videos, seed=ev.seed)
    # the same clips in batches: fixed per-call costs are shared, as in offline processing
    batches = [slice(i, i + latency_batch) for i in range(0, n_lat - latency_batch + 1, latency_batch)]
    batched = interleaved_ms(fns, batches, seed=ev.seed) if batches else None
    summ = timing["summary"]
    result["ms_per_video"] = summ["adaptive"]["median_ms"]
    full = f"uniform_{ev.cfg.resolutions[0]}"
    for k, v in baselines.items():
        v["ms_per_video"] = summ[k]["median_ms"] if k in summ else None
        v["cpu_ms_per_video"] = summ[k]["cpu_median_ms"] if k in summ else None
    per = timing["per_video_ms"]
    ratios = torch.tensor([a / u for a, u in zip(per["adaptive"], per[full])])
    cpu = timing["per_video_cpu_ms"]
    cpu_ratios = torch.tensor([a / max(u, 1e-9) for a, u in zip(cpu["adaptive"], cpu[full])])
    result["cpu_ms_per_video"] = summ["adaptive"]["cpu_median_ms"]
    result["latency"] = {
        "threads": 1,
        "videos": len(videos),
        "adaptive_over_uniform_full_median": float(ratios.median()),
        "adaptive_over_uniform_full_quartiles": _quartiles(ratios),
        "adaptive_over_uniform_full_cpu_median": float(cpu_ratios.median()),
        "summary": summ,
        "note": "wall-clock per video (batch of one clip), interleaved in one run; other jobs may share the CPU",
    }
    if batched is None:
        return
    bper = batched["per_video_ms"]
    bratios = torch.tensor([a / u for a, u in zip(bper["adaptive"], bper[full])])
    result["ms_per_video_batched"] = batched["summary"]["adaptive"]["median_ms"] / latency_batch
    result["latency"]["batched"] = {
        "clips_per_batch": latency_batch,
        "batches": len(batches),
        "adaptive_over_uniform_full_median": float(bratios.median()),
        "adaptive_over_uniform_full_quartiles": _quartiles(bratios),
        "ms_per_video": {k: v["median_ms"] / latency_batch for k, v in batched["summary"].items()},
    }
    for k, v in baselines.items():
        v["ms_per_video_batched"] = batched["summary"][k]["median_ms"] / latency_batch if k in summ else None


def cfg_skips(model) -> list[int]:
    return list(model.cfg.skips)


def evaluate_and_record(run: str | Path, **kwargs) -> dict:
    """`evaluate_run`, then `run/eval.json` and the run's record (kind video.eval), replacing video.train's.

    The record's `spent` is the training's (the run's `spent.json`) plus this evaluation,
    measured here without a ledger of its own (the run directory has one: training's).
    """
    from frugalml.cost.tracker import Ledger, add_segments, read_segments
    from frugalml.files import write_json

    with Ledger(None, children=True, label="video.eval") as ledger:
        res = evaluate_run(run, **kwargs)
    write_json(Path(run) / "eval.json", res)
    write_eval_record(run, res, add_segments(read_segments(run) + ledger.segments))
    return res


def _clip_cost(entry: dict, params: int | None = None):
    """Per-clip `Cost` of an eval entry (the adaptive result or a baseline)."""
    from frugalml.cost.currency import Cost
    from frugalml.video.training import MACS_NOTE

    ms = entry.get("ms_per_video")
    notes = {"macs": MACS_NOTE}
    if ms is not None:
        notes["latency_s"] = "measured: median wall-clock per clip, batch of one, 1 thread, interleaved"
    return Cost(
        params=params,
        macs=round(entry["gflops_per_video"] * 1e9 / 2),
        latency_s=None if ms is None else ms / 1e3,
        notes=notes,
    )


def _trained_params(run: Path) -> dict:
    """Parameter counts of the uniform and adaptive models from the training's record, if it wrote one."""
    from frugalml.report import record

    try:
        rec = record.read(run)
    except FrugalError:  # no record (a run trained before records existed): no parameter counts
        return {}
    return {side: (rec.get(side) or {}).get("params") for side in ("before", "after")}


def write_eval_record(run: str | Path, res: dict, spent: dict) -> Path:
    """`run/record.json` from an evaluation: adaptive (after) vs uniform full resolution (before), per clip;
    every baseline (uniform at each resolution, random, oracle) and the adaptive model as points."""
    from frugalml.files import CONFIG, read_json
    from frugalml.report import record

    run = Path(run)
    cfg = read_json(run / CONFIG)
    params = _trained_params(run)
    full = f"uniform_{cfg['resolutions'][0]}"
    base = res["baselines"][full]
    quality = {"accuracy": record.metric(res["accuracy"]), "uniform_accuracy": record.metric(base["accuracy"])}
    points = [{"label": "adaptive", "quality": {"accuracy": record.metric(res["accuracy"])}, "cost": _clip_cost(res)}]
    points += [
        {"label": k, "quality": {"accuracy": record.metric(v["accuracy"])}, "cost": _clip_cost(v)}
        for k, v in res["baselines"].items()
    ]
    uniform = "uniform.safetensors" if (run / "uniform.safetensors").is_file() else "stage1.safetensors"
    artifacts = {"weights": "final.safetensors", "uniform_weights": uniform, "eval": "eval.json"}
    artifacts |= {"result": "result.json"} if (run / "result.json").is_file() else {}
    artifacts |= {f"plot_{Path(p).stem}": Path(p).name for p in res.get("plots", [])}
    rec = record.build(
        "video.eval",
        quality=quality,
        config=cfg,
        data=cfg.get("data"),
        model="arnet",
        before=_clip_cost(base, params.get("before")),
        after=_clip_cost(res, params.get("after")),
        spent=spent,
        points=points,
        artifacts=artifacts,
    )
    return record.write(run, rec)
