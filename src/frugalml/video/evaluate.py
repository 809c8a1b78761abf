"""Evaluate a trained run: accuracy, counted FLOPs and measured wall-clock per video for the
adaptive model and every baseline, plus the evidence that the policy learned where to spend.
"""

from __future__ import annotations

from pathlib import Path

import torch

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


def evaluate_run(
    run: str | Path,
    latency_videos: int = 40,
    random_draws: int = 3,
    seed: int = 0,
    plots: bool = True,
    latency_batch: int = 8,
) -> dict:
    from frugalml.video.train import load_run

    cfg, model, stage1, ds = load_run(run)
    x, y = ds.x_test, ds.y_test
    names = model.action_names()
    table = flops_table(model, cfg.frames)
    nb = model.num_backbones
    actions = in_chunks(lambda v: policy_actions(model, v), x)
    logits = in_chunks(lambda v, a: apply_backbones(model, v, a), x, actions)
    flops = video_flops(table, actions)
    result = {
        "run_dir": str(run),
        "data": cfg.data,
        "test_clips": len(y),
        "accuracy": _acc(logits, y),
        "gflops_per_video": float(flops.mean()) / 1e9,
        "action_usage": action_usage(actions, names),
        "flops": table.to_dict(),
    }
    # every timed function takes a slice of test clips and runs them as one batch
    fns = {"adaptive": lambda sl: adaptive_logits(model, x[sl])}
    baselines: dict = {}
    with torch.no_grad():
        for b, r in enumerate(cfg.resolutions):
            key = f"uniform_{r}"
            baselines[key] = {
                "accuracy": _acc(in_chunks(lambda v, b=b: uniform_logits(stage1, v, b), x), y),
                "gflops_per_video": table.uniform[b] / 1e9,
            }
            fns[key] = lambda sl, b=b: uniform_logits(stage1, x[sl], b)
        # random policy with the learned policy's action mix, on the same final backbones
        counts = torch.stack([(actions == i).sum() for i in range(model.num_actions)]).double()
        mix = counts / counts.sum()
        gen = torch.Generator().manual_seed(seed)
        accs, gfl = [], []
        for _ in range(random_draws):
            ra = random_actions(mix, len(y), cfg.frames, cfg_skips(model), nb, gen)
            accs.append(_acc(in_chunks(lambda v, a: apply_backbones(model, v, a), x, ra), y))
            gfl.append(float(video_flops(table, ra, with_policy=False).mean()) / 1e9)
        baselines["random"] = {
            "accuracy": sum(accs) / len(accs),
            "accuracy_draws": accs,
            "gflops_per_video": sum(gfl) / len(gfl),
            "action_mix": mix.tolist(),
        }
        rgen = torch.Generator().manual_seed(seed + 1)

        def random_path(sl):
            v = x[sl]
            return apply_backbones(model, v, random_actions(mix, len(v), cfg.frames, cfg_skips(model), nb, rgen))

        fns["random"] = random_path
        informative = ds.info.get("informative_test")
        if informative is not None:
            oa = oracle_actions(informative)
            gf = float(video_flops(table, oa, with_policy=False).mean()) / 1e9
            oracle_logits = in_chunks(lambda v, a: apply_backbones(model, v, a), x, oa)
            baselines["oracle"] = {"accuracy": _acc(oracle_logits, y), "gflops_per_video": gf}
            fns["oracle"] = lambda sl: apply_backbones(model, x[sl], oracle_actions(informative[sl]))
    n_lat = min(latency_videos, len(y))
    videos = [slice(i, i + 1) for i in range(n_lat)]
    timing = interleaved_ms(fns, videos, seed=seed)
    # the same clips in batches: fixed per-call costs are shared, as in offline processing
    batches = [slice(i, i + latency_batch) for i in range(0, n_lat - latency_batch + 1, latency_batch)]
    batched = interleaved_ms(fns, batches, seed=seed) if batches else None
    summ = timing["summary"]
    result["ms_per_video"] = summ["adaptive"]["median_ms"]
    full = f"uniform_{cfg.resolutions[0]}"
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
        "adaptive_over_uniform_full_cpu_median": float(cpu_ratios.median()),
        "summary": summ,
        "note": "wall-clock per video (batch of one clip), interleaved in one run; other jobs may share the CPU",
    }
    if batched is not None:
        bper = batched["per_video_ms"]
        bratios = torch.tensor([a / u for a, u in zip(bper["adaptive"], bper[full])])
        result["ms_per_video_batched"] = batched["summary"]["adaptive"]["median_ms"] / latency_batch
        result["latency"]["batched"] = {
            "clips_per_batch": latency_batch,
            "batches": len(batches),
            "adaptive_over_uniform_full_median": float(bratios.median()),
            "ms_per_video": {k: v["median_ms"] / latency_batch for k, v in batched["summary"].items()},
        }
        for k, v in baselines.items():
            v["ms_per_video_batched"] = batched["summary"][k]["median_ms"] / latency_batch if k in summ else None
    result["gflops_ratio_vs_uniform_full"] = result["gflops_per_video"] / baselines[full]["gflops_per_video"]
    result["baselines"] = baselines
    if informative is not None:
        result["evidence"] = evidence(actions, informative, ds.info["min_res_test"], flops, list(cfg.resolutions))
    else:
        result["evidence"] = None
    if plots:
        from frugalml.video.plots import plot_choices

        result["plots"] = [str(plot_choices(Path(run) / "choices.png", x, actions, informative, names, y))]
    return result


def cfg_skips(model) -> list[int]:
    return list(model.cfg.skips)
