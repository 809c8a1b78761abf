"""Supernet schedules: how close do sub-networks straight from the supernet get to the same networks
trained from scratch, and at what training cost?

    .venv/bin/python benchmarks/bench_nas_schedules.py            # full (SETTINGS below), ~25 min on 2 cores
    .venv/bin/python benchmarks/bench_nas_schedules.py --quick    # smoke run, a few minutes

For each search space (`cnn` on MNIST-1D, `transformer` on sorting) and seed (0, 1), supernets
trained with
- `sandwich` for E epochs: the present schedule of `bench_nas_cnn.py` / `bench_nas_transformer.py`
  (the largest, the smallest and 2 random sub-networks per step; the CNN with in-place distillation);
- `progressive` shrinking (OFA) for E epochs, at about the same cost: its first stage trains the
  largest network alone (1 sub-network per step instead of 4), but its later stages sample
  sub-networks near the largest (the genes not yet elastic stay at their maximum); the CPU-s of
  every supernet are reported, so the match can be checked;
- and, for the CNN, `sandwich` for 3 E epochs: what three times the cost buys.

The sub-networks compared are members of each space's hand-scaled family (the NAS benchmarks'
scaling baseline): each is extracted from the supernet with its shared weights (BatchNorm
recalibrated, no fine-tune) and scored on the test split, against the same architecture trained
from scratch for E epochs (2 seeds). Same architecture, same latency: the gap is at equal
latency by construction. Independent jobs run through `frugalml.executor.run_jobs` (local
processes, or FRUGAL_EXECUTOR). Resumes from runs/bench-nas-schedules/.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # nas_experiment, beside this file

SETTINGS = {
    "cnn": {
        "epochs": 40,
        "distill": True,
        "members": ("d1-e1", "d1-e2", "d2-e2", "d3-e3"),
        "schedules": (("sandwich", 1.0), ("progressive", 1.0), ("sandwich", 3.0)),
    },
    "transformer": {
        "epochs": 30,
        "distill": False,
        "members": ("w1-d1", "w2-d1", "w1-d2", "w3-d3"),
        "schedules": (("sandwich", 1.0), ("progressive", 1.0)),
    },
}
SEEDS = (0, 1)


def schedule_name(sampling: str, factor: float) -> str:
    return f"{sampling}-x{factor:g}"


def supernet_job(
    out: str, space: str, seed: int, schedule: str, sampling: str, epochs: int, distill: bool, quick: bool
) -> dict:
    """Train (or reload) one supernet; score the family members straight from it on the test split."""
    from nas_experiment import _supernet_job

    from frugalml.models import space as spaces
    from frugalml.nas.supernet import Evaluator, load_supernet

    res = _supernet_job(out, space, seed, epochs, sampling, 2, distill, quick)
    sp, net, _meta = load_supernet(out)
    train, _val, test = sp.dataset(quick=quick)
    ev = Evaluator(sp, net, train, test)
    family = dict(spaces.get(space).scaling_family())
    return {
        "space": space,
        "seed": seed,
        "schedule": schedule,
        "sampling": sampling,
        "epochs": epochs,
        "cpu_s": res["cost"]["cpu_s"],
        "stages": res.get("stages"),
        "inherited": {name: ev(arch) for name, arch in family.items()},
    }


def baseline_job(out: str, space: str, name: str, seed: int, epochs: int, quick: bool) -> dict:
    from nas_experiment import _baseline_job

    from frugalml.models import space as spaces

    arch = dict(spaces.get(space).scaling_family())[name]
    return _baseline_job(out, space, name, arch, seed, epochs, quick)


def dispatch(kind: str, **kw) -> dict:
    return supernet_job(**kw) if kind == "supernet" else baseline_job(**kw)


def jobs_for(root: Path, quick: bool) -> list[dict]:
    jobs = []
    for space, s in SETTINGS.items():
        epochs = 4 if quick else s["epochs"]  # progressive needs an epoch per stage
        for seed in SEEDS:
            for sampling, factor in s["schedules"]:
                name = schedule_name(sampling, factor)
                e = max(round(factor * epochs), 4)
                out = str(root / space / f"{name}-s{seed}")
                jobs.append(dict(kind="supernet", out=out, space=space, seed=seed, schedule=name, sampling=sampling))
                jobs[-1] |= {"epochs": e, "distill": s["distill"], "quick": quick}
            for member in s["members"]:
                out = str(root / space / "baseline" / f"{member}-s{seed}")
                jobs.append(dict(kind="baseline", out=out, space=space, name=member, seed=seed, epochs=epochs))
                jobs[-1]["quick"] = quick
    return jobs


def summarise(space: str, results: list[dict]) -> dict:
    """Per schedule: each member's inherited accuracy (mean over seeds) against from scratch, the
    mean gap in points, and the supernet's CPU-s."""
    s = SETTINGS[space]
    scratch_runs = {m: [r for r in results if r.get("name") == m] for m in s["members"]}
    scratch = {m: statistics.mean(r["test_accuracy"] for r in rs) for m, rs in scratch_runs.items()}
    out = {
        "from_scratch": scratch,
        "from_scratch_per_seed": {m: [r["test_accuracy"] for r in rs] for m, rs in scratch_runs.items()},
        "from_scratch_cpu_s_mean": statistics.mean(r["cost"]["cpu_s"] for rs in scratch_runs.values() for r in rs),
        "schedules": {},
    }
    for sampling, factor in s["schedules"]:
        runs = [r for r in results if r.get("schedule") == schedule_name(sampling, factor) and r["space"] == space]
        per = {m: statistics.mean(r["inherited"][m] for r in runs) for m in s["members"]}
        gaps = {m: 100 * (per[m] - scratch[m]) for m in s["members"]}
        out["schedules"][schedule_name(sampling, factor)] = {
            "epochs": runs[0]["epochs"],
            "inherited": per,
            "inherited_per_seed": {m: [r["inherited"][m] for r in runs] for m in s["members"]},
            "gap_points": gaps,
            "mean_gap_points": statistics.mean(gaps.values()),
            "worst_gap_points": min(gaps.values()),
            "members_within_half_point": sum(g >= -0.5 for g in gaps.values()),
            "supernet_cpu_s_mean": statistics.mean(r["cpu_s"] for r in runs),
            "stages": runs[0]["stages"],
        }
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="tiny settings (quick data sets, 4 epochs) to check the script"
    )
    ap.add_argument("--out", default=None, help="run directory (default runs/bench-nas-schedules[-quick])")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    from frugalml.executor import bench_executor, run_jobs
    from frugalml.report.bench import save_result

    t0 = time.time()
    root = Path(args.out or f"runs/bench-nas-schedules{'-quick' if args.quick else ''}")
    jobs = jobs_for(root, args.quick)
    # the long jobs first, so the two workers finish together
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i]["epochs"] * (4 if jobs[i]["kind"] == "supernet" else 1))
    done = run_jobs(dispatch, [jobs[i] for i in order], bench_executor(args.workers), root=root)
    results = [None] * len(jobs)
    for i, r in zip(order, done, strict=True):
        results[i] = r | {"space": jobs[i]["space"]}
    summary = {space: summarise(space, results) for space in SETTINGS}
    payload = {
        "settings": {
            "quick": args.quick,
            "seeds": list(SEEDS),
            "spaces": {k: v | {"schedules": [schedule_name(*x) for x in v["schedules"]]} for k, v in SETTINGS.items()},
            "metric": "test accuracy (cnn) / exact match of the greedy decode (transformer), test split",
        },
        "summary": summary,
        "runs": [r for r in results if "inherited" in r],
        "wall_seconds": round(time.time() - t0, 1),
    }
    path = save_result("nas_schedules" + ("_quick" if args.quick else ""), payload)
    print_summary(summary)
    print(f"saved {path} in {payload['wall_seconds'] / 60:.1f} min")


def print_summary(summary: dict) -> None:
    for space, sm in summary.items():
        members = list(sm["from_scratch"])
        print(f"{space}: test accuracy, mean of seeds {list(SEEDS)}")
        print(f"  {'':<16}" + "".join(f"{m:>9}" for m in members) + f"{'mean gap':>10}{'CPU-s':>9}")
        scratch = "".join(f"{sm['from_scratch'][m]:9.3f}" for m in members)
        print(f"  {'from scratch':<16}{scratch}{'':>10}{sm['from_scratch_cpu_s_mean']:9.0f}")
        for name, row in sm["schedules"].items():
            cells = "".join(f"{row['inherited'][m]:9.3f}" for m in members)
            print(f"  {name:<16}{cells}{row['mean_gap_points']:+10.2f}{row['supernet_cpu_s_mean']:9.0f}")


if __name__ == "__main__":
    main()
