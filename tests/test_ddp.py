"""Data-parallel `fit` (torch.distributed, gloo on 127.0.0.1): two processes against one.

The two processes are started as torchrun would start them (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT in the environment), each running a small script; `frugal train
--nproc 2` is driven too (it starts its processes with `frugalml.distributed.launch`).
Independent checks: the weights after one and two steps equal those of one process on the
same global batches (the averaging of gradients, a tail batch smaller than the world
included); test accuracy within a point of one process for two seeds; a run whose rank 0
is killed mid-epoch resumes from its last checkpoint and ends where the uninterrupted run did.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from clirun import frugal, saved

from frugalml import data, distributed, models
from frugalml.files import read_json
from frugalml.train import TrainConfig, fit

SRC = Path(__file__).resolve().parents[1] / "src"
EPOCHS = 3
CFG = {"epochs": EPOCHS, "lr": 0.1}  # `frugal train`'s defaults otherwise: the default mlp, batch 64, SGD
STEP_CFG = {"epochs": 1, "batch_size": 64, "lr": 0.1, "optimizer": "sgd", "momentum": 0.9}

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    from dataclasses import replace
    import torch
    from frugalml import data, models
    from frugalml.train import TrainConfig, fit
    torch.set_num_threads(1)
    out, (cfg, step_cfg) = sys.argv[1], json.loads(sys.argv[2])
    rank = int(os.environ["RANK"])
    ds = data.get("digits")
    for n in (64, 65):  # one full batch; then a full batch and a tail of one example
        small = replace(ds, x_train=ds.x_train[:n], y_train=ds.y_train[:n])
        torch.manual_seed(100 + rank)  # different starting weights per rank: rank 0's must win
        net = models.for_data("mlp", small, hidden=(32,))
        fit(net, small, TrainConfig(**step_cfg))
        torch.save(net.state_dict(), f"{out}/step{n}-rank{rank}.pt")
    torch.manual_seed(1)  # seed 1 as `frugal train --seed 1` trains it
    res = fit(models.for_data("mlp", ds), ds, TrainConfig(**cfg, seed=1))
    if rank == 0:
        with open(f"{out}/seed1.json", "w") as f:
            json.dump({"final": res.final, "processes": res.processes}, f)
    def on_step(model, opt, it):  # rank 0 dies inside epoch 2 (22 steps an epoch)
        if rank == 0 and it == 22 + 7:
            os.kill(os.getpid(), signal.SIGKILL)
    torch.manual_seed(0)  # seed 0 as `frugal train --seed 0` trains it, killed
    fit(models.for_data("mlp", ds), ds, TrainConfig(**cfg, seed=0), f"{out}/run", on_step=on_step, track=True)
    """
)


def _world(tmp_path: Path, nproc: int = 2, timeout: float = 300.0) -> list[int]:
    """Start `nproc` ranks of SCRIPT as torchrun would; their exit codes."""
    script = tmp_path / "ddp_script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(distributed.free_port()), WORLD_SIZE=str(nproc))
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), json.dumps([CFG, STEP_CFG])],
            env=env | {"RANK": str(r), "LOCAL_RANK": str(r)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(nproc)
    ]
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if procs[0].poll() is not None:
            deadline = min(deadline, time.monotonic() + 20)  # rank 0 died: the others must follow
        time.sleep(0.05)
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
    return [p.returncode for p in procs]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One world of two processes: the step checks, seed 1, and seed 0 killed inside epoch 2."""
    tmp = tmp_path_factory.mktemp("ddp")
    codes = _world(tmp)
    assert codes[0] == -signal.SIGKILL, codes
    assert codes[1] != 0  # its partner gone, rank 1 stops too (it does not hang)
    return tmp


def _one_process(seed: int, data_set=None, **kw):
    ds = data_set or data.get("digits")
    torch.manual_seed(seed)
    net = models.for_data("mlp", ds, **kw)
    res = fit(net, ds, TrainConfig(**(CFG if data_set is None else STEP_CFG), seed=0 if data_set else seed))
    return res, net.state_dict()


@pytest.mark.parametrize("n", [64, 65])
def test_steps_of_two_processes_equal_one_process_on_the_same_global_batch(world, n):
    ds = data.get("digits")
    small = replace(ds, x_train=ds.x_train[:n], y_train=ds.y_train[:n])
    _res, one = _one_process(100, small, hidden=(32,))  # rank 0's starting weights
    ranks = [torch.load(world / f"step{n}-rank{r}.pt") for r in (0, 1)]
    torch.manual_seed(100)
    start = models.for_data("mlp", small, hidden=(32,)).state_dict()
    for k, w in one.items():
        assert not torch.allclose(w, start[k])  # the step moved the weights
        assert torch.allclose(ranks[0][k], w, rtol=1e-5, atol=1e-6), k
        assert torch.equal(ranks[0][k], ranks[1][k]), k  # both ranks hold the same weights


def test_killed_run_resumes_under_frugal_train_nproc_and_matches_one_process(world, capsys):
    run = world / "run"
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1  # killed inside epoch 2: epoch 1's checkpoint is the last
    args = ["train", "--model", "mlp", "--data", "digits", "--epochs", EPOCHS, "--seed", 0, "--lr", 0.1]
    stdout, err = frugal(capsys, *args, "--nproc", 2, "--out", run, "--json")
    assert saved(err) == str(run)
    res = json.loads(stdout)
    assert res["resumed_from_epoch"] == 1 and res["processes"] == 2 and res["final"]["epoch"] == EPOCHS
    rec = read_json(run / "record.json")  # rank 0 alone writes: one record, one ledger
    assert rec["config"]["processes"] == 2
    spent = read_json(run / "spent.json")
    assert len(spent["segments"]) == 2 and spent["total"]["cpu_s"] > 0
    assert "2 processes" in rec["spent"]["notes"]["cpu_s"]
    one, weights = _one_process(0)
    two = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    for k, w in weights.items():  # 66 steps apart only by the order of float sums
        assert torch.allclose(two[k], w, rtol=1e-3, atol=1e-4), (k, (two[k] - w).abs().max())
    seed1 = read_json(world / "seed1.json")
    for seed, final in ((0, res["final"]), (1, seed1["final"])):
        acc1 = (one if seed == 0 else _one_process(1)[0]).final["test_accuracy"]
        assert acc1 > 0.85 and abs(final["test_accuracy"] - acc1) <= 0.01, (seed, acc1, final)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--nproc", "0"], "--nproc must be >= 1"),
        (["--nproc", "-2"], "--nproc must be >= 1"),
        (["--nproc", "3", "--batch-size", "2"], "more processes than examples per batch"),
        (["--nproc", "2", "--device", "cuda"], "cuda"),
    ],
)
def test_bad_nproc_is_one_line(assert_bad_input, tmp_path, args, needle):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "run"
    assert_bad_input(["train", "--model", "mlp", "--data", "digits", "--out", out, *args], out, needle)


def test_an_unavailable_backend_is_one_clear_line(monkeypatch):
    import torch.distributed as dist

    from frugalml.errors import FrugalError

    monkeypatch.setattr(dist, "is_gloo_available", lambda: False)
    with pytest.raises(FrugalError, match="gloo backend"):
        distributed.backend_for("cpu")


def test_nas_train_nproc_0_is_one_line(assert_bad_input, tmp_path):
    out = tmp_path / "nas"
    assert_bad_input(["nas", "train", "--quick", "--nproc", "0", "--out", out], out, "--nproc must be >= 1")


@pytest.mark.slow
def test_nas_train_nproc_2_trains_the_supernet_and_rank0_writes(tmp_path, capsys):
    out = tmp_path / "nas"
    stdout, err = frugal(capsys, "nas", "train", "--quick", "--epochs", 1, "--nproc", 2, "--out", out, "--json")
    assert saved(err) == str(out)
    res = json.loads(stdout)
    assert res["processes"] == 2 and res["final"]["epoch"] == 1
    assert read_json(out / "result.json")["processes"] == 2
    assert (out / "supernet.safetensors").is_file() and (out / "record.json").is_file()
    assert "2 processes" in read_json(out / "record.json")["spent"]["notes"]["cpu_s"]
