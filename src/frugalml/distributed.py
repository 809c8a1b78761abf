"""Data-parallel training over several processes (torch.distributed), for `frugalml.train.fit`.

- Who is who comes from torchrun's environment (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
  `MASTER_ADDR`, `MASTER_PORT`); `join` starts the process group once (gloo on CPU, nccl on
  GPU). `launch` starts such a world on this machine (127.0.0.1, a free port) for `--nproc`.
- Sharding: global batch `i` of the seeded epoch order is split among the ranks, rank `r`
  taking its examples `r, r + W, r + 2W, ...` (what `DistributedSampler` hands each rank when
  the batch divides evenly). `TrainConfig.batch_size` stays the global batch.
- Gradients: each rank scales its mean loss by its share of the global batch, and one
  all_reduce (sum) over the flattened gradients - what DDP's reducer does, without wrapping
  the model, so loss functions that run several sub-networks per step work unchanged - gives
  every rank the global batch's mean gradient. A parameter no rank used keeps no gradient,
  and a non-finite loss on any rank stops every rank.
- Buffers (BatchNorm statistics) and the starting weights come from rank 0, as with DDP.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

from frugalml.errors import FrugalError

JOB_ENV = "FRUGAL_DDP_JOB"


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def env_world() -> World:
    """This process's place, as torchrun's environment states it (one process when unset)."""
    try:
        size = int(os.environ.get("WORLD_SIZE") or 1)
        rank = int(os.environ.get("RANK") or 0)
        local = int(os.environ.get("LOCAL_RANK") or rank)
    except ValueError:
        raise FrugalError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None
    if size < 1 or not 0 <= rank < size:
        raise FrugalError(f"RANK {rank} is not within WORLD_SIZE {size}")
    return World(rank, size, local)


def is_main() -> bool:
    """Whether this process writes files and prints (rank 0, or no distributed world)."""
    return env_world().main


def check_nproc(nproc: int, batch_size: int | None = None, n_examples: int | None = None) -> None:
    """`--nproc` must be positive and leave every process at least one example per batch."""
    if nproc < 1:
        raise FrugalError(f"--nproc must be >= 1 (processes), got {nproc}")
    if batch_size is not None and nproc > batch_size:
        raise FrugalError(
            f"--nproc {nproc} is more processes than examples per batch ({batch_size}): each process needs "
            "at least one; raise --batch-size or lower --nproc"
        )
    if n_examples is not None and nproc > n_examples:
        raise FrugalError(f"--nproc {nproc} is more processes than training examples ({n_examples})")


def backend_for(device: str) -> str:
    """gloo for CPU tensors, nccl for CUDA ones; a clear error when torch lacks it here."""
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        raise FrugalError("this torch was built without torch.distributed: data-parallel training is not available")
    if device.startswith("cuda"):
        if not (torch.cuda.is_available() and dist.is_nccl_available()):
            raise FrugalError(f"device '{device}' needs the nccl backend, which is not available here (no CUDA GPU)")
        return "nccl"
    if not dist.is_gloo_available():
        raise FrugalError("the gloo backend (CPU) is not available in this torch build")
    return "gloo"


def join(device: str):
    """(World, torch.device) of this process: joins torchrun's process group the first time."""
    import torch
    import torch.distributed as dist

    world = env_world()
    dev = torch.device(device)
    if world.size == 1:
        return world, dev
    if not dist.is_initialized():
        backend = backend_for(device)
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
        if missing:
            raise FrugalError(f"WORLD_SIZE is {world.size} but {' and '.join(missing)} are not set (use torchrun)")
        dist.init_process_group(backend, rank=world.rank, world_size=world.size)
    if dev.type == "cuda":  # one GPU per process on each machine
        dev = torch.device("cuda", world.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    return world, dev


def local_part(batch, world: World):
    """(this rank's examples of a global batch, their share of it). A tail batch smaller than the
    world leaves some ranks nothing: they compute on it with share 0, so every rank steps alike."""
    if world.size == 1:
        return batch, 1.0
    part = batch[world.rank :: world.size]
    if len(part) == 0:
        return batch, 0.0
    return part, len(part) / len(batch)


def average_gradients(params: list, bad: bool) -> bool:
    """Sum every rank's (share-scaled) gradients in place; True if any rank's loss was non-finite.

    A parameter that no rank gave a gradient keeps none (so Adam leaves it alone, as in one process)."""
    import torch
    import torch.distributed as dist

    ref = params[0]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flags = [float(p.grad is not None) for p in params] + [float(bad)]
    flat = torch.cat([g.reshape(-1) for g in grads] + [torch.tensor(flags, dtype=ref.dtype, device=ref.device)])
    dist.all_reduce(flat)
    offset = 0
    for p, g in zip(params, grads):
        p.grad = flat[offset : offset + g.numel()].view_as(g).clone()
        offset += g.numel()
    for p, used in zip(params, flat[offset:].tolist()):
        if used == 0:
            p.grad = None
    return flat[-1].item() > 0


def all_sum(values: list[float], device="cpu") -> list[float]:
    """The sum over ranks of each value (float64)."""
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_object(obj):
    """Rank 0's `obj` on every rank (picklable objects)."""
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sync_from_main(tensors) -> None:
    """Copy rank 0's tensors (weights at the start, buffers such as BatchNorm statistics) to every rank."""
    import torch.distributed as dist

    for t in tensors:
        dist.broadcast(t.data, src=0)


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class RankCpu:
    """CPU-seconds of every rank, for rank 0's ledger: its own (read any time) plus the others',
    as of the last `sync` (a collective all ranks call at each epoch's end)."""

    def __init__(self, world: World):
        self.world, self.others, self.t0 = world, 0.0, own_cpu_seconds()

    def __call__(self) -> float:
        return own_cpu_seconds() + self.others

    def spent(self) -> float:
        """This rank's CPU-seconds since the meter started (what `sync` sums)."""
        return own_cpu_seconds() - self.t0

    def note(self) -> str:
        return f"measured (os.times) in each of {self.world.size} processes, summed at every epoch's end"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(nproc: int, target: str, kwargs: dict, threads: int | None = None) -> None:
    """Run `target(**kwargs)` ("module:function", JSON-able kwargs) in `nproc` processes on this
    machine, ranks 0..nproc-1 of one world on 127.0.0.1. Rank 0's stderr is this process's; a
    `FrugalError` in the job comes back as one, any other failure as the failing rank's last lines."""
    import json

    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(nproc))
    env |= {"LOCAL_WORLD_SIZE": str(nproc), JOB_ENV: json.dumps({"target": target, "kwargs": kwargs})}
    if "OMP_NUM_THREADS" not in os.environ:  # as torchrun: the cores shared out, not each process taking all
        env["OMP_NUM_THREADS"] = str(threads or max(1, (os.cpu_count() or 1) // nproc))
    code = "from frugalml.distributed import worker; worker()"
    procs, tails, relays = [], [], []
    for rank in range(nproc):
        p = subprocess.Popen(
            [sys.executable, "-c", code],
            env=env | {"RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        tail: deque[str] = deque(maxlen=20)
        relay = threading.Thread(target=_relay, args=(p.stderr, tail, rank == 0), daemon=True)
        relay.start()
        procs.append(p)
        tails.append(tail)
        relays.append(relay)
    codes = _wait(procs)
    for relay in relays:  # a process's stderr ends when it does
        relay.join(timeout=10)
    _raise_failure(codes, tails)


def _relay(stream, tail: deque, show: bool) -> None:
    """Keep the last lines of a rank's stderr; rank 0's (not its error line) also go to ours."""
    for line in stream:
        tail.append(line.rstrip("\n"))
        if show and not line.startswith(ERROR_PREFIX):
            sys.stderr.write(line)
            sys.stderr.flush()


def _wait(procs: list, grace_s: float = 10.0) -> list[int]:
    """Exit codes of all ranks; once one fails, the others get `grace_s` to end, then are stopped."""
    failed_at = None
    try:
        while any(p.poll() is None for p in procs):
            if failed_at is None and any(p.poll() not in (None, 0) for p in procs):
                failed_at = time.monotonic()
            if failed_at is not None and time.monotonic() - failed_at > grace_s:
                _stop(procs)
            time.sleep(0.05)
    except KeyboardInterrupt:
        _stop(procs)
        raise
    for p in procs:
        p.wait()
    return [p.returncode for p in procs]


def _stop(procs: list) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 5
    for p in procs:
        try:
            p.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            p.kill()


ERROR_PREFIX = "frugal: error: "


def _raise_failure(codes: list[int], tails: list[deque]) -> None:
    if all(c == 0 for c in codes):
        return
    for rank in sorted(range(len(codes)), key=lambda r: (codes[r] == 0, r != 0)):
        errors = [line for line in tails[rank] if line.startswith(ERROR_PREFIX)]
        if errors:
            raise FrugalError(errors[-1][len(ERROR_PREFIX) :])
    rank = next(r for r, c in enumerate(codes) if c != 0)
    last = " | ".join(line for line in list(tails[rank])[-3:] if line.strip())
    raise FrugalError(f"process {rank} of {len(codes)} failed (exit status {codes[rank]}): {last}")


def worker() -> None:
    """The body of one process started by `launch`: run the job, a `FrugalError` as one line, exit 2."""
    import importlib
    import json

    job = json.loads(os.environ[JOB_ENV])
    module, _, name = job["target"].partition(":")
    try:
        getattr(importlib.import_module(module), name)(**job["kwargs"])
    except FrugalError as e:
        print(ERROR_PREFIX + " ".join(str(e).split()), file=sys.stderr, flush=True)
        sys.exit(2)
    finally:
        _leave()


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
