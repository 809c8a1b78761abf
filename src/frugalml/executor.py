"""One small interface for independent jobs (seeds, controls, sweeps, search candidates).

Techniques call `run_jobs(fn, jobs, executor)`; where the jobs run is the executor's business:

- `serial`: here, one after the other (the default; `FRUGAL_EXECUTOR` changes it);
- `processes[:N]`: N local processes (all cores without N);
- `ray`: a Ray cluster started here for this command; `ray:auto` joins the cluster this
  machine belongs to (`ray start`), `ray://HOST:PORT` joins one through the Ray client and
  `ray:HOST:PORT` through its GCS address.

`fn` must be a module-level function and each job a dict of keyword arguments. On Ray a job
needs no shared file system: given `root` (the run directory), the files under it travel to
the worker through Ray's object store, every path argument under `root` is rewritten to a
scratch copy there, and the files the job writes come back as bytes, which the driver writes
atomically into `root` in the order the job wrote them (a job's "done" file stays last). A
worker that dies mid-job is replaced and the job retried (`max_retries`); a job already done
in `root` returns at once, so a rerun of a killed driver skips it. With a `ledger` each job
measures what it spent on its worker and the driver adds it to the run's ledger.

Ray is imported only when a Ray executor is used (`pip install 'frugalml[cluster]'`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugalml.errors import FrugalError

ENV = "FRUGAL_EXECUTOR"
FORMS = "serial, processes[:N], ray, ray:auto, ray://HOST:PORT or ray:HOST:PORT"
CONNECT_TIMEOUT_S = 3.0
SKIP = ("spent.json",)  # the driver's own ledger, rewritten while jobs run; no job reads it


@dataclass(frozen=True)
class Executor:
    """Where `run_jobs` runs its jobs: kind "serial", "processes" (`workers`) or "ray" (`address`:
    None starts a local Ray, "auto" joins this machine's cluster, "ray://H:P" or "H:P" a given one)."""

    kind: str = "serial"
    workers: int = 1
    address: str | None = None

    def __str__(self) -> str:
        if self.kind == "processes":
            return f"processes:{self.workers}"
        if self.kind == "ray":
            if self.address is None:
                return "ray"
            return self.address if self.address.startswith("ray://") else f"ray:{self.address}"
        return "serial"

    @property
    def parallel(self) -> bool:
        return self.kind != "serial"


def _host_port(text: str, spec: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise FrugalError(f"malformed executor '{spec}': expected HOST:PORT after ray (known forms: {FORMS})")
    return text


def bench_executor(workers: int) -> str | int:
    """What a benchmark runs its jobs on: `FRUGAL_EXECUTOR` when set (e.g. `ray:auto`), else
    `workers` local processes."""
    return os.environ.get(ENV, "").strip() or workers


def parse_executor(spec: str | int | Executor | None = None) -> Executor:
    """An executor from its text (`--executor`), a worker count (`--workers N`: processes:N), or
    None: `FRUGAL_EXECUTOR`, else serial. Malformed text is a FrugalError naming the forms."""
    if isinstance(spec, Executor):
        return spec
    if spec is None:
        spec = os.environ.get(ENV, "").strip() or "serial"
    if isinstance(spec, int):
        if spec < 1:
            raise FrugalError(f"workers must be >= 1, got {spec}")
        return Executor("processes", spec) if spec > 1 else Executor()
    text = str(spec).strip()
    kind, sep, rest = text.partition(":")
    if text == "serial":
        return Executor()
    if kind == "processes":
        if not sep:
            return Executor("processes", os.cpu_count() or 1)
        if not rest.isdigit() or int(rest) < 1:
            raise FrugalError(f"malformed executor '{text}': processes:N takes a count N >= 1")
        return Executor("processes", int(rest))
    if text == "ray":
        return Executor("ray")
    if text.startswith("ray://"):
        return Executor("ray", address="ray://" + _host_port(text[len("ray://") :], text))
    if kind == "ray" and rest == "auto":
        return Executor("ray", address="auto")
    if kind == "ray" and rest:
        return Executor("ray", address=_host_port(rest, text))
    raise FrugalError(f"malformed executor '{text}' (known forms: {FORMS})")


def _die_with_parent(parent: int) -> None:
    """Worker initializer: exit as soon as the process that started us is gone (killed, say), so
    no orphaned job keeps computing - competing with a rerun for the CPU and writing into its
    run directory."""
    import threading
    import time

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def run_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[dict],
    executor: str | int | Executor | None = None,
    *,
    workers: int | None = None,
    root: str | os.PathLike | None = None,
    inputs: Sequence[str | os.PathLike] = (),
    ledger: Any = None,
    advance: Callable[..., Any] | None = None,
    max_retries: int = 3,
) -> list[Any]:
    """Run `fn(**job)` for every job and return the results in job order.

    `executor`: see `parse_executor` (`workers=N` is the older spelling of processes:N).
    `root`: the run directory the jobs read and write (needed on Ray, where there is no
    shared file system); `inputs`: directories outside it they only read. `ledger`: a
    `cost.tracker.Ledger`; on Ray each job measures itself with `ledger.meter` and the driver
    adds the figures with `ledger.add_remote`. `advance(1)` is called as each job finishes
    (one progress line over all jobs)."""
    ex = parse_executor(workers if executor is None and workers is not None else executor)
    jobs = list(jobs)
    if ex.kind == "ray" and jobs:
        return _run_ray(fn, jobs, ex, (root, tuple(inputs)), ledger, advance, max_retries)
    if ex.kind == "serial" or ex.workers <= 1 or len(jobs) <= 1:
        results = []
        for job in jobs:
            results.append(fn(**job))
            if advance:
                advance(1)
        return results
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")
    init = {"initializer": _die_with_parent, "initargs": (os.getpid(),)}
    with ProcessPoolExecutor(min(ex.workers, len(jobs)), mp_context=ctx, **init) as pool:
        futures = [pool.submit(fn, **job) for job in jobs]
        for f in as_completed(futures):
            f.result()  # the first failure stops the sweep
            if advance:
                advance(1)
        return [f.result() for f in futures]


# ---------------------------------------------------------------- Ray


def _import_ray():
    try:
        import ray
    except ImportError:
        raise FrugalError("this executor needs Ray: pip install 'frugalml[cluster]'") from None
    return ray


def probe(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse an address nothing listens on, at once (Ray itself retries for a long time)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        raise FrugalError(f"cannot reach a Ray cluster at {address} ({e.__class__.__name__}: {e})") from None


def _auto_address() -> str:
    """The cluster `ray:auto` joins: RAY_ADDRESS, else the one `ray start` last started here."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env != "auto":
        return env
    tmp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"  # where Ray itself looks
    current = Path(tmp) / "ray" / "ray_current_cluster"
    if current.is_file() and current.read_text().strip():
        return current.read_text().strip().splitlines()[0]
    raise FrugalError("ray:auto found no Ray cluster on this machine: start one with `ray start --head`")


_joined: dict = {}  # the address this process joined


def connect(executor: str | Executor | None = None):
    """The `ray` module, connected to the executor's cluster (started here for plain `ray`);
    an address nothing answers on is refused within a few seconds. Connects once per process."""
    ex = parse_executor(executor)
    if ex.kind != "ray":
        ex = Executor("ray", address="auto")
    ray = _import_ray()
    address = _auto_address() if ex.address == "auto" else ex.address
    if address is not None:
        probe(address)
    if ray.is_initialized():
        if address is None or address == _joined.get("address"):
            return ray
        ray.shutdown()  # another cluster than the one joined before in this process
    quiet = {"logging_level": "ERROR", "log_to_driver": False}
    try:
        if address is None:
            ray.init(include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
        _joined["address"] = address
    except FrugalError:
        raise
    except Exception as e:  # Ray's own errors: a version mismatch, a port that is no Ray
        raise FrugalError(f"cannot join the Ray cluster at {address}: {str(e).splitlines()[0]}") from None
    return ray


def connect_any():
    """The `ray` module connected: to the cluster already joined in this process, else to
    FRUGAL_EXECUTOR's when that names a Ray cluster, else to this machine's (`ray:auto`)."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    env = os.environ.get(ENV, "").strip()
    ex = parse_executor(env) if env else None
    return connect(ex if ex is not None and ex.kind == "ray" else Executor("ray", address="auto"))


def pinned_task(fn, args: tuple) -> dict:
    """What a task pinned to a device node runs: `fn(*args)`, with the node it ran on."""
    import socket

    import ray

    return {"result": fn(*args), "node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname()}


def run_pinned(resource: str, fn, *args, max_retries: int = 3) -> dict:
    """`fn(*args)` as a Ray task on a node that advertises the custom `resource`, holding all of
    that node's `resource` (so tasks on one device run one at a time); returns
    {"result", "node_id", "host"}. A resource no node advertises is a FrugalError at once."""
    ray = connect_any()
    require_resource(ray, resource)
    task = ray.remote(resources={resource: node_resource(ray, resource)}, max_retries=max_retries)(pinned_task)
    try:
        return ray.get(task.remote(fn, args))
    except ray.exceptions.RayTaskError as e:
        raise e.as_instanceof_cause() from None


def require_resource(ray, name: str, address: str = "") -> float:
    """How much of the custom resource `name` the cluster has; a FrugalError when no node advertises it."""
    have = ray.cluster_resources()
    if have.get(name, 0) <= 0:
        custom = sorted(k for k in have if k not in ("CPU", "GPU", "memory", "object_store_memory") and ":" not in k)
        raise FrugalError(
            f"no node of the Ray cluster{' at ' + address if address else ''} advertises the resource '{name}' "
            f"(advertised: {', '.join(custom) or 'none'}; attach one with `ray start --resources '{{\"{name}\": 1}}'`)"
        )
    return have[name]


def node_resource(ray, name: str) -> float:
    """What one node advertises of `name` (the largest): a task that asks for all of it has the node alone."""
    return max(n["Resources"].get(name, 0) for n in ray.nodes() if n.get("Alive"))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (but the driver's ledger) as {relative path: bytes}."""
    if not root.is_dir():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in SKIP and not p.name.endswith(".tmp")
    }


def _rewrite(obj: Any, old: str, new: str) -> Any:
    """`obj` with every path under `old` (str or Path, nested in dicts, lists, tuples) moved under `new`."""
    if isinstance(obj, (str, Path)):
        s = str(obj)
        if s == old or s.startswith(old + os.sep):
            moved = new + s[len(old) :]
            return Path(moved) if isinstance(obj, Path) else moved
        return obj
    if isinstance(obj, dict):
        return {k: _rewrite(v, old, new) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_rewrite(v, old, new) for v in obj)
    return obj


def _unpack(files: dict[str, bytes], where: str) -> None:
    for rel, data in files.items():
        p = Path(where, rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def remote_job(fn, job: dict, files: dict[str, bytes], root: str | None, meter, inputs: tuple = ()) -> dict:
    """What a Ray task runs: `fn(**job)` in a scratch copy of `root` (and of each read-only input
    directory, `inputs` = ((path, files), ...)); returns the result, the files it wrote under
    `root` (in the order it wrote them) and, with a `meter`, what it spent here."""
    import shutil
    import socket
    import tempfile

    scratch = tempfile.mkdtemp(prefix="frugal-job-")
    work = os.path.join(scratch, "run")
    moves = [] if root is None else [(root, work)]
    try:
        _unpack(files, work)
        for i, (path, got) in enumerate(inputs):
            _unpack(got, os.path.join(scratch, f"in{i}"))
            moves.append((str(path), os.path.join(scratch, f"in{i}")))
        tracker = meter().start() if meter is not None else None
        args = job
        for old, new in moves:
            args = _rewrite(args, old, new)
        result = fn(**args)
        spent = tracker.stop().segment() if tracker is not None else None
        written = sorted(
            (p.stat().st_mtime_ns, str(p.relative_to(work)))
            for p in Path(work).rglob("*")
            if p.is_file() and not p.name.endswith(".tmp")
        )
        out = [(rel, Path(work, rel).read_bytes()) for _, rel in written]
        out = [(rel, data) for rel, data in out if files.get(rel) != data]
        if spent is not None:
            spent["where"] = f"{socket.gethostname()} (pid {os.getpid()})"
        for old, new in moves:
            result = _rewrite(result, new, old)
        return {"result": result, "files": out, "spent": spent}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _save_files(root: Path, files: list[tuple[str, bytes]]) -> None:
    from frugalml.files import atomic_save

    for rel, data in files:
        atomic_save(root / rel, lambda f, data=data: f.write(data))


def _run_ray(fn, jobs: list[dict], ex: Executor, dirs: tuple, ledger, advance, max_retries: int) -> list[Any]:
    """`run_jobs` on a Ray cluster: one task per job, retried when its worker dies; results and files
    come back to the driver, which writes the files into `root` as each job finishes."""
    root, inputs = dirs
    ray = connect(ex)
    root_path = None if root is None else Path(root)
    files = ray.put(snapshot(root_path) if root_path is not None else {})
    ins = ray.put(tuple((str(d), snapshot(Path(d))) for d in inputs))
    meter = getattr(ledger, "meter", None)
    task = ray.remote(num_cpus=1, max_retries=max_retries)(remote_job)
    # `root` as the jobs spell it: they are rewritten by prefix
    rootspec = None if root is None else str(root)
    refs = [task.remote(fn, job, files, rootspec, meter, ins) for job in jobs]
    results: dict[Any, dict] = {}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                got = ray.get(ref)
                if root_path is not None:
                    _save_files(Path(root), got["files"])
                if got["spent"] is not None and ledger is not None:
                    ledger.add_remote([got["spent"]])
                results[ref] = got["result"]
                if advance:
                    advance(1)
    except ray.exceptions.RayTaskError as e:
        cause = e.as_instanceof_cause()
        for ref in pending:
            ray.cancel(ref, force=True)
        raise cause from None
    return [results[r] for r in refs]
