"""The Ray executor on a real two-node Ray cluster on loopback: a head and a worker node that
advertises the custom resource `fake-device`, started once for the module (about 20 s).

Sweeps on Ray give the serial run's metrics and byte-identical weights; a worker killed
mid-job is retried with the same result; `--target ray:fake-device` measures on the node that
advertises it; bad addresses and resources are refused within seconds."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray")

from clirun import frugal  # noqa: E402

from frugalml import executor  # noqa: E402
from frugalml.errors import FrugalError  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"
RAY_BIN = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict) -> subprocess.Popen:
    common = ["--num-cpus", "1", "--object-store-memory", "100000000", "--disable-usage-stats", "--block"]
    common += ["--node-ip-address", "127.0.0.1", "--min-worker-port", "0", "--max-worker-port", "0"]
    common += ["--dashboard-agent-listen-port", "0"]
    # a session of its own, so the teardown stops this cluster's processes and no one else's
    return subprocess.Popen(
        [str(RAY_BIN), "start", *args, *common],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait_s in ((signal.SIGTERM, 3), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def cluster():
    """The GCS address of a head plus one worker node with {"fake-device": 1}, both on 127.0.0.1;
    this test process is the driver, and the worker node's id comes along."""
    if not RAY_BIN.exists():
        pytest.skip("no `ray` command beside this Python")
    port = _free_port()
    tmp = Path(f"/tmp/ray-{secrets.token_hex(3)}")  # short: Ray's unix socket paths must fit 107 bytes
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(":"))
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # a loopback cluster for this module alone: no token auth, whatever ~/.ray holds (a token
    # there turns it on for every new head, and the driver must then be given it too)
    env["RAY_AUTH_MODE"] = "disabled"
    saved_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    client_port = _free_port()
    head_args = ["--head", "--port", str(port), "--ray-client-server-port", str(client_port)]
    head_args += ["--dashboard-port", str(_free_port())]
    head = _start([*head_args, "--include-dashboard", "false", "--temp-dir", str(tmp)], env)
    procs = [head]
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                executor.probe(address, timeout=0.5)
                break
            except Exception:
                time.sleep(0.5)
        procs.append(_start(["--address", address, "--resources", json.dumps({"fake-device": 1})], env))
        while True:  # a head whose port is open may not take drivers yet on a busy machine
            try:
                r = executor.connect(f"ray:{address}")
                break
            except FrugalError:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        while time.time() < deadline and r.cluster_resources().get("fake-device", 0) < 1:
            time.sleep(0.5)
        assert r.cluster_resources().get("fake-device") == 1, r.cluster_resources()
        device_node = next(n["NodeID"] for n in r.nodes() if n["Alive"] and "fake-device" in n["Resources"])
        yield {"address": f"ray:{address}", "client": f"ray://127.0.0.1:{client_port}", "device_node": device_node}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for p in reversed(procs):
            _stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
        if saved_mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved_mode


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


TICKETS = ["tickets", "find", "--quick", "--seeds", "0,1", "--data", "digits:classes=0-2", "--epochs", "1"]
TICKETS += ["--controls", "random"]


def test_a_tickets_sweep_on_ray_matches_the_serial_run(cluster, tmp_path, capsys):
    frugal(capsys, *TICKETS, "--executor", "serial", "--out", tmp_path / "serial")
    frugal(capsys, *TICKETS, "--executor", cluster["address"], "--out", tmp_path / "ray")
    serial, onray = _files(tmp_path / "serial"), _files(tmp_path / "ray")
    weights = [k for k in serial if k.endswith(".safetensors")]
    assert len(weights) == 2 * (3 + 3 + 1)  # per seed: mask, rewind, weights at 2 levels; a random mask
    assert set(serial) == set(onray)
    assert all(serial[k] == onray[k] for k in weights), [k for k in weights if serial[k] != onray[k]]
    for k in (k for k in serial if k.endswith("metrics.json")):
        a, b = json.loads(serial[k]), json.loads(onray[k])
        for row in (a, b):  # the same metrics but for the wall time each run took
            row.pop("seconds")
            for h in row.get("history", []):
                h.pop("seconds")
        assert a == b, k
    # what the jobs spent on their workers is in the run's ledger: one segment per job
    spent = json.loads(onray["spent.json"])
    remote = [s for s in spent["segments"] if s.get("remote")]
    assert len(remote) == 4 and all(s["cpu_s"] > 0 and s["energy_j"] > 0 for s in remote)
    rec = json.loads(onray["record.json"])
    assert rec["spent"]["cpu_s"] >= sum(s["cpu_s"] for s in remote)


ANALOG = ["analog", "sweep", "--param", "states", "--values", "20,2000", "--seeds", "0,1", "--epochs", "1"]
ANALOG += ["--hidden", "8", "--json"]


def test_an_analog_sweep_on_ray_matches_the_serial_run(cluster, tmp_path, capsys):
    a, _ = frugal(capsys, *ANALOG, "--executor", "serial", "--out", tmp_path / "serial")
    b, _ = frugal(capsys, *ANALOG, "--executor", cluster["address"], "--out", tmp_path / "ray")
    assert json.loads(a)["summary"] == json.loads(b)["summary"]
    checkpoints = sorted(str(p.relative_to(tmp_path / "serial")) for p in (tmp_path / "serial").rglob("checkpoint.pt"))
    assert len(checkpoints) == 2 + 4  # a digital reference per seed, an analog run per cell
    for k in checkpoints:  # every weight (conductances, counts, scales) the same to the byte
        a, b = (torch.load(tmp_path / side / k, weights_only=False)["model"] for side in ("serial", "ray"))
        assert list(a) == list(b)
        assert all(a[n].numpy().tobytes() == b[n].numpy().tobytes() for n in a), k


def die_once(out: str, seed: int, marker: str) -> float:
    """A job that writes a seeded tensor into `out` and returns its sum; on its first attempt
    (no marker yet) it kills its own worker process halfway, as a crashed node would."""
    import torch

    from frugalml.files import atomic_save

    torch.manual_seed(seed)
    w = torch.randn(1000)
    atomic_save(Path(out, f"w{seed}.pt"), lambda f: torch.save(w, f))
    if seed == 1 and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        os._exit(1)
    return float(w.sum())


def test_a_worker_killed_mid_job_is_retried_and_the_results_are_unchanged(cluster, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # this module is not on the workers' path
    marker = tmp_path / "died"
    jobs = [{"out": str(tmp_path / "ray"), "seed": s, "marker": str(marker)} for s in range(3)]
    got = executor.run_jobs(die_once, jobs, cluster["address"], root=tmp_path / "ray")
    assert marker.exists()  # the first attempt of seed 1 did die
    (tmp_path / "serial").mkdir()
    want = [die_once(str(tmp_path / "serial"), s, str(marker)) for s in range(3)]
    assert got == want
    assert _files(tmp_path / "ray") == _files(tmp_path / "serial")


def once(out: str, seed: int) -> str:
    """A job that is done when its file is there (as every sweep job is); else it writes it."""
    path = Path(out, f"done{seed}.txt")
    if path.exists():
        return "skipped: " + path.read_text()
    path.write_text(f"seed {seed} on {os.getpid()}")
    return "ran"


def test_a_rerun_skips_the_jobs_already_in_the_run_directory(cluster, tmp_path):
    """A killed driver's rerun: what the first run wrote into the run directory reaches the workers."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    (tmp_path / "done0.txt").write_text("seed 0 before")  # written before the driver was killed
    jobs = [{"out": str(tmp_path), "seed": s} for s in range(2)]
    assert executor.run_jobs(once, jobs, cluster["address"], root=tmp_path) == ["skipped: seed 0 before", "ran"]
    assert (tmp_path / "done1.txt").read_text().startswith("seed 1 on ")  # brought back by the driver
    again = executor.run_jobs(once, jobs, cluster["address"], root=tmp_path)
    assert again == ["skipped: seed 0 before", "skipped: " + (tmp_path / "done1.txt").read_text()]


def test_latency_on_a_ray_target_is_measured_on_the_node_that_advertises_it(cluster, tmp_path):
    from frugalml.models import space as spaces
    from frugalml.nas import latency as lat

    sp = spaces.get("cnn")
    net = sp.build_supernet(0)
    data = lat.collect(sp, net, "ray:fake-device", 3, tmp_path / "l.json", rounds=2, min_run_time=0.02)
    assert [w["node_id"] for w in data["measured_on"]] == [cluster["device_node"]] * 2
    assert len(data["records"]) == 3 and not data["modelled"] and data["noise_floor"]["n"] == 3
    assert data["records"][0]["latency_ms"] < data["records"][1]["latency_ms"]  # smallest vs largest
    assert lat.measure(sp, net, sp.smallest(), "ray:fake-device", min_run_time=0.02) > 0


def test_a_resource_no_node_advertises_is_refused(cluster, assert_bad_input, tmp_path):
    line = assert_bad_input(
        ["nas", "latency", "--run", tmp_path, "--target", "ray:nonexistent", "--executor", cluster["address"]],
        tmp_path,
        "ray:nonexistent",
    )
    assert "fake-device" in line  # it names what the cluster does advertise


@pytest.mark.parametrize(
    ("executor_spec", "needle"),
    [("ray://127.0.0.1:1", "cannot reach a Ray cluster at ray://127.0.0.1:1"), ("ray:nohost", "malformed executor")],
)
def test_an_unreachable_or_malformed_executor_is_refused_at_once(executor_spec, needle, assert_bad_input, tmp_path):
    t0 = time.monotonic()
    assert_bad_input([*TICKETS, "--executor", executor_spec, "--out", tmp_path / "o"], tmp_path / "o", needle)
    assert time.monotonic() - t0 < 30


@pytest.mark.slow  # a supernet to measure first (~15 s), then one Ray task per operator for the lookup table
def test_nas_latency_and_search_on_a_ray_target_from_the_command_line(cluster, tmp_path, capsys):
    on = ["--target", "ray:fake-device", "--executor", cluster["address"]]
    frugal(capsys, "nas", "train", "--quick", "--epochs", "1", "--sampling", "uniform", "--out", tmp_path / "sn")
    out, _ = frugal(capsys, "nas", "latency", "--run", tmp_path / "sn", "--quick", *on, "--json")
    res = json.loads(out)
    assert not res["modelled"] and res["samples"] == 20 and res["mlp"]["mape_pct"] >= 0
    data = json.loads((tmp_path / "sn" / "latency" / "ray:fake-device.json").read_text())
    assert {w["node_id"] for w in data["measured_on"]} == {cluster["device_node"]}
    lo, hi = res["latency_range_ms"]
    out, _ = frugal(capsys, "nas", "search", "--run", tmp_path / "sn", "--quick", *on, "--latency-ms", hi, "--json")
    found = json.loads(out)
    assert found["measured_latency_ms"] > 0 and found["predicted_latency_ms"] <= hi


def seeded(out: str, seed: int) -> float:
    """A job that writes a seeded tensor into `out` and returns its sum."""
    import torch

    from frugalml.files import atomic_save

    torch.manual_seed(seed)
    w = torch.randn(1000)
    atomic_save(Path(out, "sub", f"w{seed}.pt"), lambda f: torch.save(w, f))
    return float(w.sum())


@pytest.mark.slow  # the client server starts a process per driver (~15 s here); last, as it reconnects
def test_jobs_through_the_ray_client_address_bring_their_files_back(cluster, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    jobs = [{"out": str(tmp_path / "ray"), "seed": s} for s in range(2)]
    got = executor.run_jobs(seeded, jobs, cluster["client"], root=tmp_path / "ray")
    want = [seeded(str(tmp_path / "serial"), s) for s in range(2)]
    assert got == want
    assert _files(tmp_path / "ray") == _files(tmp_path / "serial") != {}
