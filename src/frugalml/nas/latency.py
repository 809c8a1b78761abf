"""Latency targets, latency data sets and latency predictors.

Targets ("devices"):
- `host-1t`, `host-2t`: this machine with 1 or 2 threads, measured at batch 1 (warm-up,
  then single calls timed; trimmed mean of the fastest quarter, see `time_module`).
- `ray:NAME`: measured like `host-1t` (1 thread, batch 1), as Ray tasks on a node of the Ray
  cluster that advertises the custom resource NAME (a device attached with `ray start
  --address ... --resources '{"NAME": 1}'`); each task holds all of the node's NAME, so one
  measurement runs there at a time. The cluster: `--executor`, else FRUGAL_EXECUTOR, else `ray:auto`.
- any row of `frugalml.cost.hardware` (e.g. `rpi4`): *modelled* by a roofline,
  time = max(FLOPs / sustained FLOP/s, weight bytes / memory bandwidth). Marked modelled.

Predictors (both generic over `SearchSpace`):
- `MLPPredictor`: HAT's predictor, an MLP (3 hidden layers of 400) on the space's
  architecture features, trained on log-latency.
- `LookupTable`: per-operator latencies measured once (the space's `operators(arch)`),
  summed, with a least-squares scale and offset fitted on the training sub-networks (the
  offset absorbs per-call overhead that no single operator shows).

`metrics` gives RMSE, MAPE and Kendall tau on held-out sub-networks; `collect` also
re-measures some sub-networks to give the noise floor of the measurement itself.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import torch
from torch import nn

from frugalml.errors import FrugalError
from frugalml.files import read_json, write_json

HOST = {"host-1t": 1, "host-2t": 2}
RAY = "ray:"
RAY_THREADS = 1  # a device attached through Ray is measured as host-1t is


def is_ray(device: str) -> bool:
    return device.startswith(RAY)


def check_device(device: str) -> str:
    if device in HOST:
        return device
    if is_ray(device):
        from frugalml import executor

        name = device[len(RAY) :]
        if not name:
            raise FrugalError(f"latency target '{device}' names no Ray resource (ray:NAME, e.g. ray:rpi4)")
        try:
            executor.require_resource(executor.connect_any(), name)
        except FrugalError as e:
            raise FrugalError(f"latency target '{device}': {e}") from None
        return device
    from frugalml.cost import hardware

    try:
        hardware.get(device, measure_host=False)
    except FrugalError:
        known = ", ".join([*HOST, *hardware.names()])
        raise FrugalError(f"unknown latency target '{device}' (known: {known})") from None
    return device


def is_modelled(device: str) -> bool:
    return device not in HOST and not is_ray(device)


def modelled_latency_s(space, arch: dict, device: str) -> float:
    """Roofline time of one batch-1 forward pass on a device profile (fp32 weights)."""
    from frugalml.cost import hardware

    hw = hardware.get(device, measure_host=False)
    flops = 2 * space.macs(arch)
    tflops = hw.sustained_tflops or hw.peak_fp32_tflops
    if not tflops:
        raise FrugalError(f"device '{device}' has no throughput figure to model latency from")
    compute = flops / (tflops * 1e12)
    params = sum(p.numel() for p in space.build_subnet(arch).parameters())
    memory = params * 4 / (hw.mem_bw_gbs * 1e9) if hw.mem_bw_gbs else 0.0
    return max(compute, memory)


def time_module(module, example_input, threads: int, min_run_time: float = 0.2) -> float:
    """Batch-1 latency (s): warm-up, then single calls timed for `min_run_time` s; mean of the fastest quarter.

    `frugalml.cost.latency.measure_latency`'s default median of timed blocks differed by ~30%
    between repeats of the same network on this shared CPU; the fastest single calls (other
    processes only ever add time) repeat within a few %. The noise floor reported beside
    every predictor measures exactly this estimator.
    """
    from frugalml.cost.latency import measure_latency

    return measure_latency(module, example_input, threads, min_run_time, stat="fastest_quarter").estimate_s


def time_pairs(pairs: list, threads: int, min_run_time: float, rounds: int = 1) -> list[float]:
    """`time_module` of every (module, input) pair, each its minimum over `rounds` rounds."""
    times = [[time_module(m, x, threads, min_run_time) for m, x in pairs] for _ in range(rounds)]
    return [min(ts) for ts in zip(*times, strict=True)]


def time_on(device: str, pairs: list, min_run_time: float, rounds: int = 1) -> tuple[list[float], dict]:
    """`time_pairs` on a measured target: here for host-*, in one Ray task on the device for ray:NAME.
    Returns the seconds and where they were measured ({"node_id", "host"} on Ray, else {})."""
    if not is_ray(device):
        return time_pairs(pairs, HOST[device], min_run_time, rounds), {}
    from frugalml import executor

    got = executor.run_pinned(device[len(RAY) :], time_pairs, pairs, RAY_THREADS, min_run_time, rounds)
    return got["result"], {"node_id": got["node_id"], "host": got["host"]}


def measure(space, supernet, arch: dict, device: str, min_run_time: float = 0.2, rounds: int = 4) -> float:
    """Latency in seconds of the extracted sub-network `arch` on `device` (same estimator as `collect`)."""
    if is_modelled(device):
        return modelled_latency_s(space, arch, device)
    sub = space.extract(supernet, arch)
    x = space.example_input(arch)
    return time_on(device, [(sub, x)], min_run_time / rounds, rounds)[0][0]


def collect(
    space,
    supernet,
    device: str,
    samples: int,
    path: str | Path | None = None,
    seed: int = 0,
    rounds: int = 4,
    min_run_time: float = 0.2,
    progress: bool | None = None,
) -> dict:
    """Measure `samples` random sub-networks (plus smallest and largest) on `device`.

    The time per network (`min_run_time`) is split over `rounds` rounds, each measuring
    every network once, so a burst of load from other processes spoils one round of a few
    networks instead of all rounds of one network; a network's latency is its minimum over
    rounds. Noise floor: the same networks' minimum over the even rounds against the odd
    rounds - two independent measurements - as RMSE / MAPE / Kendall tau, which is what a
    predictor's error is compared with. Saved after every round, so a killed run resumes.
    """
    from frugalml.report.progress import progress as progress_bar

    check_device(device)
    rng = random.Random(seed)
    archs = [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(max(samples - 2, 0))]
    modelled = is_modelled(device)
    rounds = 1 if modelled else max(2, rounds)
    data = {"device": device, "modelled": modelled, "seed": seed, "samples": samples, "rounds": [], "seconds": 0.0}
    if path is not None and Path(path).exists():
        old = read_json(path)
        if all(old.get(k) == data[k] for k in ("device", "seed", "samples")):
            data = old
    t0 = time.perf_counter()
    subs = [] if modelled else [space.extract(supernet, a) for a in archs]
    todo = max(rounds - len(data["rounds"]), 0)
    with progress_bar(todo * len(archs), f"latency {device}", progress) as advance:
        for _ in range(todo):
            times = []
            if is_ray(device):  # one task per round: every network once, on the device
                pairs = [(sub, space.example_input(a)) for sub, a in zip(subs, archs, strict=True)]
                seconds, where = time_on(device, pairs, min_run_time / rounds)
                times = [t * 1e3 for t in seconds]
                data.setdefault("measured_on", []).append(where)
                advance(len(archs))
            for i, a in enumerate([] if is_ray(device) else archs):
                if modelled:
                    times.append(modelled_latency_s(space, a, device) * 1e3)
                else:
                    x = space.example_input(a)
                    times.append(time_module(subs[i], x, HOST[device], min_run_time / rounds) * 1e3)
                advance(1)
            data["rounds"].append(times)
            data["seconds"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            if path is not None:
                write_json(path, data)
    per_arch = list(zip(*data["rounds"], strict=True))
    data["records"] = [
        {"arch": a, "latency_ms": min(ts), "macs": space.macs(a)} for a, ts in zip(archs, per_arch, strict=True)
    ]
    data["noise_floor"] = None
    if len(data["rounds"]) >= 2:
        even = [min(ts[0::2]) for ts in per_arch]
        odd = [min(ts[1::2]) for ts in per_arch]
        data["noise_floor"] = metrics(odd, even) | {"n": len(archs), "how": "min over odd vs even rounds"}
    data["seconds"] += time.perf_counter() - t0
    if path is not None:
        write_json(path, data)
    return data


def metrics(pred, true) -> dict:
    """RMSE (ms), MAPE (%) and Kendall tau of predictions against measurements."""
    from scipy.stats import kendalltau

    pred, true = [float(p) for p in pred], [float(t) for t in true]
    n = len(true)
    rmse = math.sqrt(sum((p - t) ** 2 for p, t in zip(pred, true, strict=True)) / n)
    mape = 100.0 * sum(abs(p - t) / t for p, t in zip(pred, true, strict=True)) / n
    tau = float(kendalltau(pred, true).statistic) if n > 1 else float("nan")
    return {"rmse_ms": rmse, "mape_pct": mape, "kendall_tau": tau}


def split(records: list[dict], test_fraction: float = 0.2, seed: int = 0):
    idx = list(range(len(records)))
    random.Random(seed).shuffle(idx)
    n_test = max(1, int(round(len(idx) * test_fraction)))
    return [records[i] for i in idx[n_test:]], [records[i] for i in idx[:n_test]]


class MLPPredictor:
    """HAT's latency predictor: MLP on architecture features -> latency (trained on log ms)."""

    kind = "mlp"

    def __init__(self, space, hidden: int = 400, layers: int = 3, steps: int = 600, lr: float = 1e-3, seed: int = 0):
        self.space, self.hidden, self.layers, self.steps, self.lr, self.seed = space, hidden, layers, steps, lr, seed
        self.net = None

    def _build(self, n_in: int) -> nn.Module:
        torch.manual_seed(self.seed)
        mods, d = [], n_in
        for _ in range(self.layers):
            mods += [nn.Linear(d, self.hidden), nn.ReLU()]
            d = self.hidden
        return nn.Sequential(*mods, nn.Linear(d, 1))

    def _x(self, archs):
        return torch.tensor([self.space.features(a) for a in archs], dtype=torch.float32)

    def fit(self, records: list[dict]) -> MLPPredictor:
        torch.set_num_threads(1)  # tiny MLP: a second thread only spins on a shared CPU
        x = self._x([r["arch"] for r in records])
        y = torch.log(torch.tensor([r["latency_ms"] for r in records], dtype=torch.float32))
        self.mu, self.sd = float(y.mean()), float(y.std().clamp_min(1e-6))
        yn = (y - self.mu) / self.sd
        self.net = self._build(x.shape[1])
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=1e-5)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.steps)
        for _ in range(self.steps):
            loss = nn.functional.mse_loss(self.net(x).squeeze(-1), yn)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        self.net.eval()
        return self

    @torch.no_grad()
    def predict_many(self, archs) -> list[float]:
        out = self.net(self._x(archs)).squeeze(-1) * self.sd + self.mu
        return torch.exp(out).tolist()

    def predict(self, arch: dict) -> float:
        return self.predict_many([arch])[0]

    def save(self, path: str | Path) -> None:
        from frugalml.train import save_weights

        save_weights(self.net, Path(path).with_suffix(".safetensors"))
        write_json(
            Path(path).with_suffix(".json"),
            {"kind": self.kind, "hidden": self.hidden, "layers": self.layers, "mu": self.mu, "sd": self.sd},
        )

    @classmethod
    def load(cls, space, path: str | Path) -> MLPPredictor:
        from frugalml.train import load_weights

        meta = read_json(Path(path).with_suffix(".json"))
        p = cls(space, hidden=meta["hidden"], layers=meta["layers"])
        p.mu, p.sd = meta["mu"], meta["sd"]
        p.net = load_weights(p._build(len(space.features(space.largest()))), Path(path).with_suffix(".safetensors"))
        p.net.eval()
        return p


class LookupTable:
    """Per-operator latency table; prediction = a * sum(op latencies) + b."""

    kind = "lut"

    def __init__(self, space, device: str, min_run_time: float = 0.05):
        self.space, self.device, self.min_run_time = space, device, min_run_time
        self.table: dict[str, float] = {}
        self.a, self.b = 1.0, 0.0
        self.seconds = 0.0

    def _op_ms(self, key: str, factory) -> float:
        if key not in self.table:
            t0 = time.perf_counter()
            module, x = factory()
            self.table[key] = time_on(self.device, [(module, x)], self.min_run_time)[0][0] * 1e3
            self.seconds += time.perf_counter() - t0
        return self.table[key]

    def raw(self, arch: dict) -> float:
        return sum(self._op_ms(k, f) for k, f in self.space.operators(arch))

    def fit(self, records: list[dict]) -> LookupTable:
        xs = [self.raw(r["arch"]) for r in records]
        ys = [r["latency_ms"] for r in records]
        n = len(xs)
        mx, my = sum(xs) / n, sum(ys) / n
        var = sum((x - mx) ** 2 for x in xs)
        self.a = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var > 0 else 1.0
        self.b = my - self.a * mx
        return self

    def predict(self, arch: dict) -> float:
        return self.a * self.raw(arch) + self.b

    def predict_many(self, archs) -> list[float]:
        return [self.predict(a) for a in archs]

    def save(self, path: str | Path) -> None:
        write_json(
            Path(path).with_suffix(".json"),
            {"kind": self.kind, "device": self.device, "a": self.a, "b": self.b, "table": self.table},
        )


class ModelledLatency:
    """For modelled devices the 'predictor' is the model itself (exact by construction)."""

    kind = "modelled"

    def __init__(self, space, device: str):
        self.space, self.device = space, device
        self._cache: dict[str, float] = {}

    def predict(self, arch: dict) -> float:
        k = self.space.key(arch)
        if k not in self._cache:
            self._cache[k] = modelled_latency_s(self.space, arch, self.device) * 1e3
        return self._cache[k]

    def predict_many(self, archs) -> list[float]:
        return [self.predict(a) for a in archs]


def evaluate_predictors(space, data: dict, seed: int = 0, lut: bool = True) -> tuple[dict, MLPPredictor]:
    """Fit the MLP (and the lookup table) on 80% of the measured sub-networks; metrics on the other 20%."""
    train, test = split(data["records"], seed=seed)
    truth = [r["latency_ms"] for r in test]
    out = {"n_train": len(train), "n_test": len(test), "noise_floor": data.get("noise_floor")}
    t0 = time.perf_counter()
    mlp = MLPPredictor(space, seed=seed).fit(train)
    out["mlp"] = metrics(mlp.predict_many([r["arch"] for r in test]), truth) | {"fit_seconds": time.perf_counter() - t0}
    pred = mlp.predict_many([r["arch"] for r in test])
    out["mlp"]["scatter"] = list(zip(truth, pred, strict=True))
    # how much the predictor under-predicts (90th percentile of (measured - predicted) / predicted)
    under = sorted((t - p) / p for t, p in zip(truth, pred, strict=True))
    out["mlp"]["under_p90"] = under[min(len(under) - 1, int(0.9 * len(under)))]
    if lut and not is_modelled(data["device"]):
        try:
            table = LookupTable(space, data["device"]).fit(train)
        except NotImplementedError:
            table = None
        if table is not None:
            pred = table.predict_many([r["arch"] for r in test])
            out["lut"] = metrics(pred, truth) | {
                "operators": len(table.table),
                "measure_seconds": table.seconds,
                "scatter": list(zip(truth, pred, strict=True)),
            }
    # the predictor used by the search is refitted on all measured sub-networks
    final = MLPPredictor(space, seed=seed).fit(data["records"])
    return out, final
