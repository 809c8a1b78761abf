import json
import os
import signal
import subprocess
import time

import pytest
import torch

from frugalml.errors import FrugalError
from frugalml.tickets import imp
from frugalml.tickets.config import ticket_training
from frugalml.tickets.imp import TicketConfig, find, level_dir, parse_rewind
from frugalml.tickets.masks import Mask


def test_find_json_has_levels_with_accuracy_controls_and_effective_macs(tiny_run):
    out, res = tiny_run
    assert [lv["level"] for lv in res["levels"]] == [0, 1, 2]
    lv0, lv1, lv2 = res["levels"]
    assert lv0["remaining"] == 1.0 and lv0["reinit_accuracy"] is None
    # LeNet-300-100 on digits (64 inputs): hidden layers lose half, the output layer a quarter.
    hidden, out_w = 64 * 300 + 300 * 100, 100 * 10
    kept1 = 64 * 300 // 2 + 300 * 100 // 2 + 750
    assert lv1["remaining"] == pytest.approx(kept1 / (hidden + out_w))
    kept2 = 64 * 300 // 4 + 300 * 100 // 4 + round(750 * 0.75)
    assert lv2["remaining"] == pytest.approx(kept2 / (hidden + out_w))
    # Effective MACs of one example = nonzero weights (each weight is used once per example).
    assert lv2["macs_effective"] == kept2
    assert lv0["macs_effective"] == hidden + out_w
    for lv in (lv1, lv2):
        for key in ("accuracy", "reinit_accuracy", "random_accuracy"):
            per_seed = lv[key]["per_seed"]
            assert len(per_seed) == 2 and lv[key]["mean"] == pytest.approx(sum(per_seed) / 2)
            assert lv[key]["min"] == min(per_seed) and lv[key]["max"] == max(per_seed)
        for seed in (0, 1):
            d = level_dir(out, lv["level"], seed)
            assert lv["accuracy"]["per_seed"][seed] == _test_accuracy(d / "weights.safetensors")
            for kind in ("reinit", "random"):
                control = json.loads((d / "controls" / kind / "metrics.json").read_text())
                assert lv[f"{kind}_accuracy"]["per_seed"][seed] == control["accuracy"]
    assert (out / "accuracy_vs_remaining.png").stat().st_size > 1000


def _test_accuracy(weights) -> float:
    """Digits test accuracy of saved LeNet-300-100 weights, recomputed here: correct / 450."""
    from safetensors.torch import load_file

    from frugalml import data

    ds = data.get("digits")
    net = imp.build_model("mlp", ds.input_shape, ds.num_classes, 0)
    net.load_state_dict(load_file(str(weights)))
    with torch.no_grad():
        correct = int((net.eval()(ds.x_test).argmax(1) == ds.y_test).sum())
    assert len(ds.y_test) == 450
    return correct / 450


def test_levels_are_self_contained_ticket_directories(tiny_run):
    out, res = tiny_run
    for level in range(3):
        d = level_dir(out, level, 0)
        for f in ("ticket.json", "mask.safetensors", "rewind.safetensors", "weights.safetensors", "metrics.json"):
            assert (d / f).is_file()
        cost = json.loads((d / "cost.json").read_text())
        assert cost["macs_effective"] == res["levels"][level]["macs_effective"]
    # Rewind 0: every level starts from the same initial weights.
    a = (level_dir(out, 0, 0) / "rewind.safetensors").read_bytes()
    assert (level_dir(out, 2, 0) / "rewind.safetensors").read_bytes() == a
    assert (level_dir(out, 2, 1) / "rewind.safetensors").read_bytes() != a


def test_trained_ticket_weights_respect_the_mask(tiny_run):
    from safetensors.torch import load_file

    out, _ = tiny_run
    d = level_dir(out, 2, 1)
    w = load_file(str(d / "weights.safetensors"))
    mask = Mask.load(d / "mask.safetensors")
    for k, m in mask.items():
        assert torch.all(w[k][~m] == 0)
        assert torch.count_nonzero(w[k][m]) == int(m.sum())


def test_random_control_mask_has_ticket_layer_counts(tiny_run):
    out, _ = tiny_run
    d = level_dir(out, 2, 0)
    ticket, rnd = Mask.load(d / "mask.safetensors"), Mask.load(d / "controls/random/mask.safetensors")
    assert {k: int(v.sum()) for k, v in ticket.items()} == {k: int(v.sum()) for k, v in rnd.items()}
    assert not ticket.equal(rnd)


def test_a_finished_run_is_not_retrained(tiny_run, monkeypatch):
    out, res = tiny_run
    cfg = TicketConfig.from_dict(json.loads((out / "config.json").read_text()))
    calls = []
    monkeypatch.setattr(imp, "train_masked", lambda *a, **k: calls.append(a) or pytest.fail("retrained"))
    again = find(cfg, out, progress=False)
    assert calls == []  # no level, seed or control trained again (counted, not timed)
    assert again["levels"] == res["levels"]


def test_different_config_in_same_directory_is_refused(tiny_run):
    out, _ = tiny_run
    cfg = TicketConfig(model="mlp", data="digits", levels=2, rate=0.3, seeds=2, train=ticket_training(epochs=2))
    with pytest.raises(FrugalError, match="rate"):
        find(cfg, out, progress=False)


@pytest.mark.parametrize(
    "text, expected", [("0", (0, "it")), ("250it", (250, "it")), ("2ep", (2, "ep")), ("7IT", (7, "it"))]
)
def test_rewind_point_parsing(text, expected):
    assert parse_rewind(text) == expected


@pytest.mark.parametrize("text", ["5", "ep", "-2it", "1.5ep"])
def test_ambiguous_rewind_point_is_refused(text):
    with pytest.raises(FrugalError, match="rewind"):
        parse_rewind(text)


def test_rewind_capture_saves_weights_at_that_iteration(tmp_path):
    # digits: 1347 training examples, batch 64 -> 22 iterations per epoch; rewind to iteration 5.
    cfg = TicketConfig(
        data="digits",
        levels=1,
        seeds=1,
        controls=[],
        rewind="5it",
        train=ticket_training(epochs=1, schedule="constant"),
    )
    find(cfg, tmp_path, progress=False)
    from frugalml.tickets import tasks
    from frugalml.train import TrainConfig, fit, load_weights

    ds = tasks.load("digits")
    ref = imp.build_model("mlp", ds.input_shape, 10, init_seed=0)
    seen = {}

    def grab(model, opt, it):
        if it == 5:
            seen["w"] = {k: v.clone() for k, v in model.state_dict().items()}

    fit(ref, ds, TrainConfig(epochs=1, batch_size=64, lr=0.05, seed=0), on_step=grab, progress=False)
    got = imp.build_model("mlp", ds.input_shape, 10, init_seed=1)
    load_weights(got, level_dir(tmp_path, 1, 0) / "rewind.safetensors")
    for k, v in got.state_dict().items():
        assert torch.equal(v, seen["w"][k])


class _Killed(Exception):
    pass


def test_interrupted_find_resumes_at_level_and_epoch_and_matches(tmp_path, monkeypatch):
    cfg = dict(
        model="mlp", data="digits", levels=2, rate=0.4, seeds=1, train=ticket_training(epochs=3), controls=["random"]
    )
    ref = find(TicketConfig(**cfg), tmp_path / "ref", progress=False)

    calls = {"n": 0}
    original = imp.MaskEnforcer.__call__
    # digits: 22 iterations per epoch; level 1 starts after 66 hook calls (+1 for iteration 0).
    stop_at = 67 + 22 + 5  # level 1, in its second epoch

    def dying(self, model, optimizer, iteration):
        calls["n"] += 1
        if calls["n"] == stop_at:
            raise _Killed
        return original(self, model, optimizer, iteration)

    monkeypatch.setattr(imp.MaskEnforcer, "__call__", dying)
    with pytest.raises(_Killed):
        find(TicketConfig(**cfg), tmp_path / "cut", progress=False)
    monkeypatch.setattr(imp.MaskEnforcer, "__call__", original)
    assert (level_dir(tmp_path / "cut", 0, 0) / "metrics.json").exists()
    assert not (level_dir(tmp_path / "cut", 1, 0) / "metrics.json").exists()
    res = find(TicketConfig(**cfg), tmp_path / "cut", progress=False)
    metrics = json.loads((level_dir(tmp_path / "cut", 1, 0) / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == 1  # level 1 picked up after its first epoch
    assert res["levels"] == ref["levels"]
    for level in range(3):
        a, b = level_dir(tmp_path / "ref", level, 0), level_dir(tmp_path / "cut", level, 0)
        assert (a / "weights.safetensors").read_bytes() == (b / "weights.safetensors").read_bytes()


@pytest.mark.slow
def test_killed_cli_run_resumes_and_matches(tmp_path, frugal_bin):
    args = [
        "tickets",
        "find",
        "--data",
        "digits",
        "--levels",
        "1",
        "--rate",
        "0.4",
        "--seeds",
        "0-0",
        "--epochs",
        "3",
        "--controls",
        "reinit",
        "--json",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ref = subprocess.run([frugal_bin, *args, "--out", str(tmp_path / "ref")], capture_output=True, text=True, env=env)
    assert ref.returncode == 0, ref.stderr
    cut = tmp_path / "cut"
    proc = subprocess.Popen([frugal_bin, *args, "--out", str(cut)], stdout=subprocess.DEVNULL, env=env)
    target = level_dir(cut, 1, 0) / "train" / "checkpoint.pt"
    deadline = time.time() + 120
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = subprocess.run([frugal_bin, *args, "--out", str(cut)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    a, b = json.loads(ref.stdout), json.loads(done.stdout)
    assert a["levels"] == b["levels"]


def test_unknown_control_and_bad_strategy_are_refused():
    with pytest.raises(FrugalError, match="control"):
        TicketConfig(controls=["dense2"]).validate()
    with pytest.raises(FrugalError, match="strategy"):
        TicketConfig(strategy="blocky").validate()
    with pytest.raises(FrugalError, match=r"\(0, 1\)"):
        TicketConfig(rate=1.0).validate()
