"""Sparse convolution on a CPU: the fast path against the per-offset reference, per layer type and per network.

    .venv/bin/python benchmarks/bench_sparse_conv.py [--rounds 60]

One thread. Two scenes: the `pointvoxel` search space's example scene (2,048 points) and a
full ray-cast scene (10,589 points, the one bench_pointcloud_latency.py times).

- layers: each layer type alone on the scene's voxels at 0.4 m (the baseline's voxel size),
  with the baseline's channels: submanifold 3x3x3 convs at strides 1 and 4, the stride-2
  down conv and the transposed up conv (kernel maps already built, as for every conv of a
  forward pass but the first at each stride), and the building of every kernel map of a
  forward pass (hashes, submanifold maps at strides 1-8, the 2x2x2 cell maps);
- networks: whole forward passes of the voxel-only baseline and of point-voxel nets (the
  architectures of benchmarks/results/pointcloud_spvnas.json, random weights: time does
  not depend on them), the reference path (`conv_path("reference")`: per-offset convs,
  kernel maps from searchsorted, devoxelisation as before) against the fast path, with
  their counted MACs (the same on both paths), and the searched net against the baseline
  on each path;
- training step: forward + backward (sum of squared logits) of the baseline and the searched net;
- profile: where a forward pass spends its time, per section (timed sections, exclusive:
  a kernel map built inside a conv counts as kernel maps, not as the conv).

Timing: single calls, every variant once per round in a shuffled order
(`frugalml.cost.latency.interleaved_calls`), this thread's CPU time per call (one torch
thread, so preemption by other processes does not count); speed-ups are per-round ratios
reference / fast, quoted as the median with quartiles and range. Wall-clock medians are
saved beside. Saves benchmarks/results/sparse_conv.json.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from contextlib import contextmanager


def _spread(values: list[float]) -> dict:
    q1, med, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": statistics.median(values), "q1": q1, "q3": q3, "min": min(values), "max": max(values)}


def _compare(fns: dict, rounds: int, pairs: dict[str, tuple[str, str]], grad: bool = False) -> dict:
    """Interleaved single calls of `fns` (no argument); per variant the median ms (CPU and wall) and,
    for each `pairs` entry name -> (numerator, denominator), the per-round ratio of CPU times.
    Without autograd (`interleaved_calls`), or with it (`grad`: the calls run their own backward)."""
    from frugalml.cost.latency import interleaved_calls, round_orders

    if grad:
        rnd, t = random.Random(0), {k: {"wall": [], "cpu": []} for k in fns}
        for r in range(rounds + 3):
            for k in next(round_orders(list(fns), 1, "shuffle", rnd)):
                c0, t0 = time.thread_time(), time.perf_counter()
                fns[k]()
                if r >= 3:  # the first rounds warm up
                    t[k]["wall"].append(time.perf_counter() - t0)
                    t[k]["cpu"].append(time.thread_time() - c0)
    else:
        t = interleaved_calls({k: (lambda _, f=f: f()) for k, f in fns.items()}, [None] * rounds, warmup=3)
    out = {
        "cpu_ms": {k: statistics.median(v["cpu"]) * 1e3 for k, v in t.items()},
        "wall_ms": {k: statistics.median(v["wall"]) * 1e3 for k, v in t.items()},
    }
    for name, (num, den) in pairs.items():
        out[name] = _spread([a / b for a, b in zip(t[num]["cpu"], t[den]["cpu"])])
    return out


def _train_step(net, x, path: str) -> None:
    from frugalml.pointcloud.sparse import conv_path

    net.zero_grad(set_to_none=True)
    with conv_path(path):
        net(x).square().mean().backward()


class Sections:
    """Exclusive wall time per named section (a section entered inside another pauses the outer one)."""

    def __init__(self):
        self.totals: dict[str, float] = {}
        self.stack: list[list] = []

    @contextmanager
    def section(self, name: str):
        now = time.perf_counter()
        if self.stack:
            outer = self.stack[-1]
            self.totals[outer[0]] = self.totals.get(outer[0], 0.0) + now - outer[1]
        self.stack.append([name, now])
        try:
            yield
        finally:
            end = time.perf_counter()
            self.totals[name] = self.totals.get(name, 0.0) + end - self.stack.pop()[1]
            if self.stack:
                self.stack[-1][1] = end

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            with self.section(name):
                return fn(*args, **kwargs)

        return timed


@contextmanager
def profiled(net, sections: Sections):
    """Time `net`'s sparse convs (by kind), batch norms, point MLPs, kernel maps and point-voxel transforms."""
    from frugalml.models.elastic import ElasticBatchNorm
    from frugalml.pointcloud import model as pvmodel
    from frugalml.pointcloud import sparse

    patches = [
        (sparse, "submanifold_map", "kernel maps"),
        (sparse, "downsample", "kernel maps"),
        (sparse, "neighbour_map", "kernel maps"),
        (sparse, "cell_map", "kernel maps"),
        (pvmodel, "downsample", "kernel maps"),
        (pvmodel, "unique_coords", "kernel maps"),
        (pvmodel, "devoxelize", "devoxelize"),
        (pvmodel, "voxelize", "voxelize"),
    ]
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in patches]
    for mod, name, label in patches:
        setattr(mod, name, sections.wrap(label, getattr(mod, name)))
    handles, open_ctx = [], {}

    def kind(m):
        if isinstance(m, sparse.SparseConv3d):
            return (
                "up conv (transposed k2)"
                if m.transposed
                else ("down conv (k2 s2)" if m.stride == 2 else "subm conv (k3)")
            )
        if isinstance(m, ElasticBatchNorm):
            return "batchnorm"
        if isinstance(m, pvmodel.PointMLP):
            return "point MLPs"
        return None

    for m in net.modules():
        label = kind(m)
        if label is None:
            continue

        def pre(mod, args, label=label):
            ctx = sections.section(label)
            ctx.__enter__()
            open_ctx.setdefault(id(mod), []).append(ctx)

        def post(mod, args, out):
            open_ctx[id(mod)].pop().__exit__(None, None, None)

        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        for mod, name, fn in saved:
            setattr(mod, name, fn)


def profile_net(net, x, path: str, calls: int) -> dict:
    """Median ms per section over `calls` forward passes; 'other' is the rest (ReLU, adds, glue, classifier)."""
    import torch

    from frugalml.pointcloud.sparse import conv_path

    per: dict[str, list[float]] = {}
    with torch.inference_mode(), conv_path(path):
        net(x)
        for _ in range(calls):
            s = Sections()
            with profiled(net, s), s.section("other"):
                net(x)
            for k, v in s.totals.items():
                per.setdefault(k, []).append(v * 1e3)
    out = {k: statistics.median(v) for k, v in per.items()}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def layer_cases(points, voxel: float, channels: tuple[int, ...]) -> dict:
    """Callables (reference, fast) per layer type on the voxels of `points` at `voxel` m."""
    import torch

    from frugalml.pointcloud import sparse
    from frugalml.pointcloud.sparse import SparseConv3d, SparseTensor, conv_fast, conv_reference

    g = torch.Generator().manual_seed(0)
    grid = torch.floor(points[:, :3] / voxel).long()
    coords, _ = sparse.unique_coords(torch.cat([torch.zeros(len(grid), 1, dtype=torch.long), grid], 1))
    levels = [coords]
    for _ in range(3):
        x = SparseTensor(torch.zeros(len(levels[-1]), 0), levels[-1], 2 ** (len(levels) - 1), {})
        levels.append(sparse.downsample(x)[0])

    def tensor(level, c, cache):
        return SparseTensor(torch.randn(len(levels[level]), c, generator=g), levels[level], 2**level, cache)

    cases = {}
    warm: dict = {}  # one cache for every layer below, as in a forward pass
    c = channels
    for name, level, conv, cin in [
        (f"subm conv k3, stride 1, {c[0]}->{c[0]}", 0, SparseConv3d(c[0], c[0]), c[0]),
        (f"subm conv k3, stride 4, {c[2]}->{c[2]}", 2, SparseConv3d(c[2], c[2]), c[2]),
        (f"down conv k2 s2, stride 1->2, {c[0]}->{c[1]}", 0, SparseConv3d(c[0], c[1], 2, 2), c[0]),
    ]:
        x = tensor(level, cin, warm)
        w = conv.weight.detach()
        cases[name] = {
            p: (lambda f=f, x=x, w=w, k=conv.kernel, s=conv.stride: f(x, w, k, s, False))
            for p, f in (("reference", conv_reference), ("fast", conv_fast))
        }
    up = SparseConv3d(c[5], c[6], 2, 2, transposed=True)
    coarse, fine = tensor(1, c[5], warm), tensor(0, c[6], warm)
    cases[f"up conv transposed k2, stride 2->1, {c[5]}->{c[6]}"] = {
        p: (lambda f=f: f(coarse, up.weight.detach(), 2, 2, True, fine))
        for p, f in (("reference", conv_reference), ("fast", conv_fast))
    }
    for case in cases.values():  # build the maps of both paths once
        for f in case.values():
            f()

    def maps(path):
        x = SparseTensor(torch.zeros(len(levels[0]), 0), levels[0], 1, {})
        for level in range(4):
            if path == "reference":
                sparse.submanifold_map(x, 3)
            else:
                sparse.neighbour_map(x, 3)
            if level < 3:
                coarse_coords = sparse.downsample(x)[0]
                if path == "fast":
                    sparse.cell_map(x)
                x = SparseTensor(torch.zeros(len(coarse_coords), 0), coarse_coords, x.stride * 2, x.cache)

    cases["kernel maps of a forward pass (strides 1-8)"] = {p: (lambda p=p: maps(p)) for p in ("reference", "fast")}
    return cases


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--profile-calls", type=int, default=10)
    args = ap.parse_args(argv)
    import torch

    from frugalml.files import read_json
    from frugalml.models import space as spaces
    from frugalml.pointcloud.model import Arch, PVNet
    from frugalml.pointcloud.space import scene_stats
    from frugalml.pointcloud.sparse import conv_path
    from frugalml.pointcloud.train import count_macs
    from frugalml.report.bench import RESULTS, save_result

    torch.set_num_threads(1)
    bench = read_json(RESULTS / "pointcloud_spvnas.json")
    base = bench["verdict"]["baseline"]
    # "searched": the net the verdict compares (older results files name it "searched")
    sources = {base: base, "searched": bench["verdict"].get("searched", "searched"), "spvcnn-w1.0-v0.3": None}
    archs = {n: Arch.from_dict(bench["models"][src or n]["arch"]) for n, src in sources.items()}
    torch.manual_seed(0)
    nets = {n: PVNet(a).eval() for n, a in archs.items()}
    scenes = {
        "2048 points": spaces.get("pointvoxel").example_input(),
        "full scene": spaces.get("pointvoxel-scan").example_input(),
    }
    voxel = archs[base].voxel_size
    payload = {
        "settings": {
            "rounds": args.rounds,
            "threads": 1,
            "voxel_size_layers": voxel,
            "layer_channels": list(archs[base].channels),
            "timer": "thread CPU time of single calls, variants interleaved in a shuffled order per round",
            "speedup": "per-round ratio reference / fast (median, quartiles, range)",
            "profile_calls": args.profile_calls,
        },
        "scenes": {},
        "layers": {},
        "networks": {},
        "searched_vs_baseline": {},
        "training_step": {},
        "profile": {},
    }
    for label, x in scenes.items():
        payload["scenes"][label] = scene_stats(x[0], voxel)
        print(f"== {label}: {x.shape[1]} points; voxels per stride at {voxel} m {payload['scenes'][label]['voxels']}")
        layers = {}
        for name, case in layer_cases(x[0], voxel, archs[base].channels).items():
            r = _compare(case, args.rounds, {"speedup": ("reference", "fast")})
            layers[name] = r
            s = r["speedup"]
            print(
                f"  {name:<46} reference {r['cpu_ms']['reference']:7.3f} ms  fast {r['cpu_ms']['fast']:7.3f} ms  "
                f"x{s['median']:.2f} [{s['min']:.2f}, {s['max']:.2f}]"
            )
        payload["layers"][label] = layers

        fns, pairs = {}, {}
        for n, net in nets.items():
            fns[f"{n} reference"] = lambda net=net, x=x: _ref(net, x)
            fns[f"{n} fast"] = lambda net=net, x=x: net(x)
            pairs[n] = (f"{n} reference", f"{n} fast")
        pairs["searched_vs_baseline_reference"] = (f"{base} reference", "searched reference")
        pairs["searched_vs_baseline_fast"] = (f"{base} fast", "searched fast")
        r = _compare(fns, args.rounds, pairs)
        nets_out = {}
        for n, net in nets.items():
            with conv_path("reference"):
                macs_ref = count_macs(net, x)
            macs = count_macs(net, x)
            nets_out[n] = {
                "arch": archs[n].to_dict(),
                "macs": macs,
                "macs_reference_path": macs_ref,
                "reference_ms": r["cpu_ms"][f"{n} reference"],
                "fast_ms": r["cpu_ms"][f"{n} fast"],
                "reference_wall_ms": r["wall_ms"][f"{n} reference"],
                "fast_wall_ms": r["wall_ms"][f"{n} fast"],
                "speedup": r[n],
            }
            s = r[n]
            print(
                f"  net {n:<20} {macs / 1e6:6.1f} MMACs  reference {nets_out[n]['reference_ms']:7.2f} ms  "
                f"fast {nets_out[n]['fast_ms']:7.2f} ms  x{s['median']:.2f} [{s['min']:.2f}, {s['max']:.2f}]"
            )
        payload["networks"][label] = nets_out
        vs = {
            "macs_reduction": nets_out[base]["macs"] / nets_out["searched"]["macs"],
            "reference": r["searched_vs_baseline_reference"],
            "fast": r["searched_vs_baseline_fast"],
        }
        payload["searched_vs_baseline"][label] = vs
        print(
            f"  searched vs {base} ({vs['macs_reduction']:.2f}x fewer MACs): "
            f"reference x{vs['reference']['median']:.2f}, fast x{vs['fast']['median']:.2f} "
            f"[{vs['fast']['min']:.2f}, {vs['fast']['max']:.2f}]"
        )
        train = {}
        for n in (base, "searched"):
            net = nets[n].train()
            r = _compare(
                {p: (lambda p=p, net=net, x=x: _train_step(net, x, p)) for p in ("reference", "fast")},
                max(args.rounds // 4, 5),
                {"speedup": ("reference", "fast")},
                grad=True,
            )
            net.eval()
            train[n] = r
            print(
                f"  training step {n:<12} reference {r['cpu_ms']['reference']:7.2f} ms  "
                f"fast {r['cpu_ms']['fast']:7.2f} ms"
                f"  x{r['speedup']['median']:.2f} [{r['speedup']['min']:.2f}, {r['speedup']['max']:.2f}]"
            )
        payload["training_step"][label] = train
        prof = {}
        for n in (base, "searched"):
            prof[n] = {p: profile_net(nets[n], x, p, args.profile_calls) for p in ("reference", "fast")}
            for p, secs in prof[n].items():
                print(f"  profile {n} {p}: " + ", ".join(f"{k} {v:.2f}" for k, v in secs.items()) + " ms")
        payload["profile"][label] = prof
    print(f"saved {save_result('sparse_conv', payload)}")


def _ref(net, x):
    from frugalml.pointcloud.sparse import conv_path

    with conv_path("reference"):
        return net(x)


if __name__ == "__main__":
    main()
