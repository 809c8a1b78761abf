"""The training loop: determinism, resume after a real kill, safetensors round trip."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from frugalml import data, models
from frugalml.errors import FrugalError
from frugalml.train import TrainConfig, evaluate, fit, load_weights, save_weights

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, json, torch
    from frugalml import data, models
    from frugalml.train import TrainConfig, fit
    torch.set_num_threads(1)
    kill_at = int(os.environ.get("KILL_AT_ITERATION", "0"))
    def on_step(model, opt, it):
        if kill_at and it == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)   # a real, uncatchable kill mid-epoch
    ds = data.get("digits")
    torch.manual_seed(3)
    net = models.for_data("mlp", ds, hidden=(32,))
    res = fit(net, ds, TrainConfig(epochs=4, batch_size=64, lr=0.1, seed=5), sys.argv[1], on_step=on_step)
    print(json.dumps({"final": res.final, "resumed_from": res.resumed_from_epoch,
                      "w": net.fc.weight.sum().item()}))
    """
)


def _run(tmp_path, run_dir, kill_at=None):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, KILL_AT_ITERATION=str(kill_at or 0))
    return subprocess.run([sys.executable, str(script), str(run_dir)], capture_output=True, text=True, env=env)


def test_killed_run_resumes_and_matches_uninterrupted(tmp_path):
    import json

    full = _run(tmp_path, tmp_path / "full")
    assert full.returncode == 0, full.stderr
    # digits: 1347 train examples / 64 = 22 iterations per epoch; die inside epoch 3
    killed = _run(tmp_path, tmp_path / "killed", kill_at=2 * 22 + 7)
    assert killed.returncode == -9
    assert (tmp_path / "killed" / "checkpoint.pt").exists()
    resumed = _run(tmp_path, tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr
    a, b = json.loads(full.stdout), json.loads(resumed.stdout)
    assert b["resumed_from"] == 2 and a["resumed_from"] == 0
    assert a["final"]["test_accuracy"] == b["final"]["test_accuracy"]
    assert a["final"]["train_loss"] == pytest.approx(b["final"]["train_loss"], rel=1e-6)
    assert a["w"] == pytest.approx(b["w"], rel=1e-6)


def test_finished_run_returns_stored_result_without_training(tmp_path):
    ds = data.get("digits")
    torch.manual_seed(0)
    net = models.for_data("mlp", ds, hidden=(16,))
    cfg = TrainConfig(epochs=2, seed=1)
    first = fit(net, ds, cfg, tmp_path)
    again = fit(models.for_data("mlp", ds, hidden=(16,)), ds, cfg, tmp_path)
    assert again.history == first.history and again.resumed_from_epoch == 2


def test_training_learns_digits():
    ds = data.get("digits")
    torch.manual_seed(0)
    net = models.for_data("mlp", ds, hidden=(64,))
    res = fit(net, ds, TrainConfig(epochs=5, lr=0.1, seed=0))
    assert res.final["test_accuracy"] > 0.9
    assert evaluate(net, ds.x_test, ds.y_test)["accuracy"] == pytest.approx(res.final["test_accuracy"])


def test_different_config_in_same_run_dir_is_refused(tmp_path):
    ds = data.get("digits")
    net = models.for_data("mlp", ds, hidden=(8,))
    fit(net, ds, TrainConfig(epochs=1), tmp_path)
    with pytest.raises(FrugalError, match="different configuration"):
        fit(net, ds, TrainConfig(epochs=1, lr=0.5), tmp_path)


def test_nan_loss_is_a_clear_error():
    ds = data.get("digits")
    net = models.for_data("mlp", ds, hidden=(8,))
    with pytest.raises(FrugalError, match="loss became nan"):
        fit(net, ds, TrainConfig(epochs=1, lr=1e30, momentum=0.0))


def test_safetensors_round_trip_and_shape_mismatch(tmp_path):
    a = models.get("mlp", in_features=10, hidden=(5,), num_classes=3)
    save_weights(a, tmp_path / "w.safetensors")
    b = load_weights(models.get("mlp", in_features=10, hidden=(5,), num_classes=3), tmp_path / "w.safetensors")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(FrugalError, match="has shape"):
        load_weights(models.get("mlp", in_features=10, hidden=(6,), num_classes=3), tmp_path / "w.safetensors")


_FIT_SCRIPT = """
import sys, torch
from frugalml import data, models
from frugalml.train import TrainConfig, fit
torch.set_num_threads(1)
ds = data.get("digits")
torch.manual_seed(0)
net = models.for_data("mlp", ds)
res = fit(net, ds, TrainConfig(epochs=80, batch_size=8, lr=0.01), run_dir=sys.argv[1], track=True, progress=False)
print(res.tracking["cpu_s"])
"""


def _fit_process(run_dir):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", _FIT_SCRIPT, str(run_dir)], stdout=subprocess.PIPE, text=True)


def test_killed_and_resumed_fit_spends_what_an_uninterrupted_one_does(tmp_path):
    import json
    import os
    import signal
    import time

    killed = _fit_process(tmp_path / "killed")
    ckpt = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.time() + 240
    while time.time() < deadline:  # kill mid-run: once a third of the epochs are saved
        if ckpt.exists() and torch.load(ckpt, weights_only=True)["epoch"] >= 28:
            break
        time.sleep(0.2)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    resumed = _fit_process(tmp_path / "killed")
    resumed_out, _ = resumed.communicate(timeout=300)
    spent = json.loads((tmp_path / "killed" / "spent.json").read_text())
    # the uninterrupted run right after, so both see the same machine (CPU time inflates under contention);
    # long enough (~10 CPU-s) that the second attempt's fixed start-up (CodeCarbon) stays a few percent
    whole = _fit_process(tmp_path / "whole")
    out, _ = whole.communicate(timeout=300)
    uninterrupted = json.loads((tmp_path / "whole" / "spent.json").read_text())["total"]["cpu_s"]
    assert float(out.strip().splitlines()[-1]) == pytest.approx(uninterrupted)

    assert len(spent["segments"]) == 2 and not spent["segments"][0]["finished"] and spent["segments"][1]["finished"]
    assert spent["segments"][0]["cpu_s"] > 0.2 * uninterrupted  # the killed attempt's spending is kept
    # the ledger's total is exactly its two attempts (nothing lost, nothing counted twice) ...
    assert spent["total"]["cpu_s"] == pytest.approx(sum(s["cpu_s"] for s in spent["segments"]))
    assert spent["total"]["energy_j"] == pytest.approx(sum(s["energy_j"] for s in spent["segments"]))
    # ... and about what one uninterrupted run spends: CPU seconds of two processes on a shared
    # machine differ by tens of percent, so this is a sanity band; the exact sums above and the
    # killed attempt's own share (checked above) are what catch a lost or doubled attempt
    assert 0.6 * uninterrupted < spent["total"]["cpu_s"] < 1.6 * uninterrupted
    assert float(resumed_out.strip().splitlines()[-1]) == pytest.approx(spent["total"]["cpu_s"])  # fit: the total
    record = json.loads((tmp_path / "killed" / "record.json").read_text())
    assert record["spent"]["cpu_s"] == pytest.approx(spent["total"]["cpu_s"]) and record["spent"]["segments"] == 2


def test_readme_api_snippet_runs_twice(tmp_path):
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    snippet = re.search(r"## Python API in five lines\n\n```python\n(.*?)```", readme, re.S).group(1)
    snippet = snippet.replace("epochs=10", "epochs=2")  # the same path, shorter
    for attempt in range(2):
        p = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"attempt {attempt + 1}: {p.stderr[-2000:]}"
        assert "co2e_g" in p.stdout or re.search(r"\d", p.stdout.splitlines()[-1])


def test_first_epoch_predicts_the_energy_of_all_epochs(tmp_path, monkeypatch, capsys):
    import json

    from frugalml.cost import tracker
    from frugalml.cost.carbon import intensity

    # a fake energy source: CodeCarbon off, no GPU, 10 W per CPU-second, and a CPU clock that the
    # training steps advance by their iteration number (1 s, 2 s, 3 s, ...)
    cpu = [100.0]
    monkeypatch.setattr(tracker.Tracker, "_start_codecarbon", lambda self: None)
    monkeypatch.setattr(tracker.GpuMeter, "open", classmethod(lambda cls, nvml=None: (None, "no GPU (test)")))
    monkeypatch.setattr("frugalml.cost.hardware.core_watts", lambda: (10.0, "test"))
    monkeypatch.setattr(tracker, "_cpu_seconds", lambda children: cpu[0])

    def on_step(model, opt, iteration):
        cpu[0] += iteration

    ds = data.get("digits").subset_classes([0, 1])
    ds.x_train, ds.y_train = ds.x_train[:16], ds.y_train[:16]
    net = models.for_data("mlp", ds, hidden=(4,))
    cfg = TrainConfig(epochs=3, batch_size=8, seed=0)  # 2 iterations per epoch
    res = fit(net, ds, cfg, tmp_path, on_step=on_step, track=True, region="FRA", progress=None)
    pred = res.tracking["prediction"]
    # epoch 1: iterations 1 + 2 = 3 CPU-s x 10 W = 30 J; x 3 epochs = 90 J
    assert pred["epochs"] == 3 and pred["first_epoch_energy_j"] == pytest.approx(30.0)
    assert pred["energy_j"] == pytest.approx(90.0)
    assert pred["co2e_g"] == pytest.approx(90.0 / 3.6e6 * intensity("FRA").g_per_kwh)
    # all epochs: 1 + 2 + ... + 6 = 21 CPU-s = 210 J, 7/3 of the prediction
    assert pred["actual_energy_j"] == pytest.approx(210.0) and pred["ratio"] == pytest.approx(7 / 3)
    assert f"predicted for 3 epochs: {90 / 3.6e6:.3g} kWh" in capsys.readouterr().err
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["spent"]["prediction"]["ratio"] == pytest.approx(7 / 3)
    assert record["spent"]["energy_parts"]["cpu"] == {"energy_j": pytest.approx(210.0), "method": "load model"}
