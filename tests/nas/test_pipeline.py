"""Supernet training/resume, the CLI and export on a tiny supernet (quick data, 1 epoch)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from frugalml.nas import supernet as sn
from frugalml.nas.pipeline import latency_step, load_exported
from frugalml.nas.supernet import SupernetConfig, load_supernet, supernet_training, train_supernet

FRUGAL = str(Path(sys.executable).with_name("frugal"))
# the benchmarks' harness (benchmarks/nas_experiment.py) is imported from its directory, as they do
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny supernet trained through `frugal nas train` (the record's run), and what it printed."""
    out = tmp_path_factory.mktemp("nas") / "sn"
    args = ["nas", "train", "--epochs", "1", "--sampling", "uniform", "--quick", "--out", str(out), "--json"]
    res = CliRunner().invoke(_cli(), args)
    assert res.exit_code == 0, res.output
    latency_step(out, "host-1t", samples=12, rounds=2, progress=False)
    return out, json.loads(res.stdout)


@pytest.fixture(scope="module")
def run(trained):
    return trained[0]


def shown(run_dir):
    """(the run's record, what `frugal show` printed)."""
    from frugalml.report import record

    res = CliRunner().invoke(_cli(), ["show", str(run_dir)])
    assert res.exit_code == 0, res.output
    return record.read(run_dir), res.stdout


def test_nas_train_writes_a_record_with_the_accuracies_it_printed(trained):
    out, printed = trained
    rec, text = shown(out)
    assert rec["kind"] == "nas.train" and "nas.train" in text and "accuracy" in text
    assert rec["quality"]["accuracy"]["value"] == pytest.approx(printed["final"]["test_accuracy"])
    assert rec["quality"]["accuracy_smallest"]["value"] == pytest.approx(printed["smallest_val_accuracy"])
    assert rec["after"]["params"] == printed["params"] > 0 and rec["after"]["macs"] > 0
    # spent is fit's own ledger on the run directory, once (not wrapped twice)
    spent = json.loads((out / "spent.json").read_text())
    assert len(spent["segments"]) == 1 and rec["spent"]["cpu_s"] == pytest.approx(spent["total"]["cpu_s"])


def test_a_killed_supernet_training_resumes_where_it_stopped(tmp_path, monkeypatch):
    cfg = SupernetConfig(sampling="uniform", quick=True, train=supernet_training(epochs=2, batch_size=128))
    train_supernet(cfg, tmp_path / "full", track=False, progress=False)
    full = load_supernet(tmp_path / "full")[1]

    real = sn.make_loss

    def killing_loss(*args):
        inner = real(*args)

        def loss_fn(model, x, y):
            if model.training and int(model.nas_step) == 10:  # 8 steps per epoch: dies in epoch 2
                raise KeyboardInterrupt
            return inner(model, x, y)

        return loss_fn

    monkeypatch.setattr(sn, "make_loss", killing_loss)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(cfg, tmp_path / "killed", track=False, progress=False)
    monkeypatch.setattr(sn, "make_loss", real)
    res = train_supernet(cfg, tmp_path / "killed", track=False, progress=False)
    assert res["resumed_from_epoch"] == 1
    resumed = load_supernet(tmp_path / "killed")[1]
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k


def test_latency_step_reports_predictors_next_to_the_noise_floor(run):
    m = json.loads((run / "latency" / "host-1t-metrics.json").read_text())
    assert m["samples"] == 12 and m["n_test"] + m["n_train"] == 12
    for k in ("mlp", "lut"):  # MAPE and RMSE by hand from the held-out (measured, predicted) pairs
        pairs = m[k]["scatter"]
        assert len(pairs) == m["n_test"]
        mape = 100 * sum(abs(p - t) / t for t, p in pairs) / len(pairs)
        rmse = (sum((p - t) ** 2 for t, p in pairs) / len(pairs)) ** 0.5
        assert m[k]["mape_pct"] == pytest.approx(mape) and m[k]["rmse_ms"] == pytest.approx(rmse)
    assert m["noise_floor"]["n"] == 12 and m["noise_floor"]["how"] == "min over odd vs even rounds"


def _cli():
    from frugalml import cli

    cli._add_groups()
    return cli.app


def test_nas_latency_and_pareto_write_records(run):
    res = CliRunner().invoke(_cli(), ["nas", "latency", "--run", str(run), "--samples", "12", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    rec, text = shown(out["run_dir"])
    assert out["run_dir"] == str(run / "latency" / "host-1t")
    assert rec["kind"] == "nas.latency" and "nas.latency" in text and "predictor_mape" in text
    mape = rec["quality"]["predictor_mape"]
    assert mape["value"] == pytest.approx(out["mlp"]["mape_pct"]) and mape["higher_is_better"] is False
    assert (run / "latency" / "host-1t" / rec["artifacts"]["metrics"]).is_file()

    args = ["nas", "pareto", "--run", str(run), "--population", "6", "--generations", "2", "--json"]
    res = CliRunner().invoke(_cli(), args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    rec, text = shown(out["run_dir"])
    assert rec["kind"] == "nas.pareto" and "nas.pareto" in text and "hypervolume" in text
    assert rec["quality"]["hypervolume"]["value"] == pytest.approx(out["hypervolume"]["nsga2"])
    assert rec["quality"]["hypervolume_random"]["value"] == pytest.approx(out["hypervolume"]["random"])
    front = out["measured_front"]
    assert len(rec["points"]) == len(front) > 0
    for p, m in zip(rec["points"], front, strict=True):
        assert p["quality"]["accuracy"]["value"] == pytest.approx(m["test_accuracy"])
        assert p["cost"]["macs"] == m["macs"]
        assert p["cost"]["latency_s"] == pytest.approx(m["measured_latency_ms"] / 1e3)


def test_search_json_has_the_documented_keys_and_meets_the_budget(run, tmp_path):
    from frugalml.nas.pipeline import predictor_for

    space = load_supernet(run)[0]
    pred = predictor_for(space, run, "host-1t")
    budget = round(pred.predict(space.largest()) * 0.8, 3)
    args = [
        "nas",
        "search",
        "--run",
        str(run),
        "--latency-ms",
        str(budget),
        "--population",
        "8",
        "--parents",
        "3",
        "--mutations",
        "3",
        "--crossovers",
        "2",
        "--iterations",
        "2",
        "--json",
    ]
    res = CliRunner().invoke(_cli(), args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("arch", "predicted_latency_ms", "measured_latency_ms", "accuracy", "macs", "search_seconds"):
        assert key in out
    assert out["predicted_latency_ms"] <= budget
    # the winner's accuracies recomputed here: extract, recalibrate BatchNorm, count correct argmaxes
    from frugalml.nas.pipeline import load_context

    _, net, _, train, val, test = load_context(run)
    sub = space.extract(net, out["arch"])
    space.prepare(sub, train)
    with torch.no_grad():
        for ds, key in ((test, "test_accuracy"), (val, "accuracy")):
            correct = int((sub.eval()(ds.x_test).argmax(-1) == ds.y_test).sum())
            assert out[key] == pytest.approx(correct / len(ds.y_test)), key
    space.validate(out["arch"])
    rec, text = shown(out["run_dir"])
    assert out["run_dir"] == str(run / "search" / f"host-1t-{budget:g}ms")
    assert rec["kind"] == "nas.search" and "nas.search" in text and "accuracy" in text
    assert rec["quality"]["accuracy"]["value"] == pytest.approx(out["test_accuracy"])
    assert rec["quality"]["val_accuracy"]["value"] == pytest.approx(out["accuracy"])
    after, before = rec["after"], rec["before"]
    assert after["macs"] == out["macs"] and after["latency_s"] == pytest.approx(out["measured_latency_ms"] / 1e3)
    assert after["notes"]["latency_s"] == "measured on host-1t"
    assert before["macs"] == space.macs(space.largest()) > after["macs"]
    scale = out["speed_check"]["factor"] if out["speed_check"] else 1.0
    assert before["latency_s"] == pytest.approx(scale * pred.predict(space.largest()) / 1e3)
    assert before["notes"]["latency_s"].startswith("predicted")
    assert rec["spent"]["cpu_s"] > 0
    # the alternative, training every evaluated candidate from scratch, from the supernet's own training
    sup = json.loads((run / "record.json").read_text())
    per_step = 2 + sup["config"]["subnets"] if sup["config"]["sampling"] == "sandwich" else 1
    cf = rec["spent"]["counterfactual"]
    assert cf["candidates"] == out["evaluations"] and cf["supernet_cpu_s"] == sup["spent"]["cpu_s"]
    assert cf["from_scratch_cpu_s"] == pytest.approx(out["evaluations"] * sup["spent"]["cpu_s"] / per_step)
    result = Path(out["run_dir"]) / rec["artifacts"]["result"]
    assert json.loads(result.read_text())["test_accuracy"] == out["test_accuracy"]
    # `nas export --arch` takes the search's run directory: the winner its record names
    exported = tmp_path / "winner"
    args = ["nas", "export", "--run", str(run), "--arch", out["run_dir"], "--out", str(exported), "--json"]
    res = CliRunner().invoke(_cli(), args)
    assert res.exit_code == 0, res.output
    assert json.loads((exported / "arch.json").read_text()) == out["arch"]
    assert json.loads(res.stdout)["macs"] == out["macs"]


def test_export_writes_a_module_that_loads_and_matches_the_supernet(run, tmp_path):
    space, net, _ = load_supernet(run)
    arch = space.smallest()
    (tmp_path / "a.json").write_text(json.dumps(arch))
    res = CliRunner().invoke(
        _cli(),
        [
            "nas",
            "export",
            "--run",
            str(run),
            "--arch",
            str(tmp_path / "a.json"),
            "--out",
            str(tmp_path / "exp"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "exp" / "model.safetensors").exists()
    module = load_exported(tmp_path / "exp")
    rec, text = shown(tmp_path / "exp")
    printed = json.loads(res.stdout)
    assert rec["kind"] == "nas.export" and "nas.export" in text and "accuracy" in text
    assert rec["quality"]["accuracy"]["value"] == pytest.approx(printed["test_accuracy"])
    assert rec["after"]["macs"] == printed["macs"] == space.macs(arch)
    assert rec["after"]["params"] == sum(p.numel() for p in module.parameters())
    assert rec["before"]["macs"] == space.macs(space.largest())
    train = space.dataset(quick=True)[0]
    ref = space.extract(net, arch)
    space.prepare(ref, train)
    x = torch.randn(5, 40)
    with torch.no_grad():
        assert torch.allclose(module(x), ref(x), atol=1e-5)


def _main(capsys, *args):
    """`frugal ...` in-process through the real entry point (exit status and stderr as the shell sees them)."""
    from frugalml import cli

    with pytest.raises(SystemExit) as e:
        cli.main(list(args))
    return e.value.code, capsys.readouterr().err


def test_bad_inputs_exit_2_with_one_clear_line(run, tmp_path, capsys):
    space = load_supernet(run)[0]
    bad = space.largest() | {"s3.b2.e": 5}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    code, err = _main(
        capsys,
        "nas",
        "export",
        "--run",
        str(run),
        "--arch",
        str(tmp_path / "bad.json"),
        "--out",
        str(tmp_path / "x"),
    )
    assert code == 2 and "gene 's3.b2.e' = 5 is outside" in err and len(err.strip().splitlines()) == 1
    code, err = _main(capsys, "nas", "search", "--run", str(run), "--latency-ms", "0.0001")
    assert code == 2 and "smallest achievable is" in err and len(err.strip().splitlines()) == 1
    code, err = _main(capsys, "nas", "train", "--space", "resnet-nope")
    assert code == 2 and "unknown search space 'resnet-nope'" in err
    code, err = _main(capsys, "nas", "train", "--subnets", "-1", "--out", str(tmp_path / "neg"))
    assert code == 2 and "subnets must be >= 0, got -1" in err and len(err.strip().splitlines()) == 1


def test_unknown_device_exits_2_from_the_installed_command(run):
    r = subprocess.run(
        [FRUGAL, "nas", "latency", "--run", str(run), "--target", "quantum-9"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert not (run / "latency" / "quantum-9").exists()
    assert r.returncode == 2 and r.stderr.strip() == (
        "frugal: error: unknown latency target 'quantum-9' (known: host-1t, host-2t, v100, p100, a100, h100, t4, "
        "tpu-v3, rpi4, snapdragon-855, eyeriss, host)"
    )


def test_sandwich_step_trains_largest_smallest_and_the_configured_number_of_random_subnets(monkeypatch):
    from frugalml.models import space as spaces

    sp = spaces.get("cnn")
    seen = []
    real = sp.set_active
    monkeypatch.setattr(sp, "set_active", lambda net, arch: (seen.append(sp.key(arch)), real(net, arch)))
    net = sp.build_supernet(seed=0).train()
    net.register_buffer("nas_step", torch.zeros((), dtype=torch.long))
    x, y = torch.randn(8, 40), torch.randint(0, 10, (8,))
    for subnets in (0, 3):
        seen.clear()
        sn.make_loss(sp, "sandwich", 0, subnets)(net, x, y)
        assert seen[:2] == [sp.key(sp.largest()), sp.key(sp.smallest())]
        assert len(seen) == 2 + subnets


def test_sandwich_without_distillation_sums_each_sampled_subnetworks_label_loss(monkeypatch):
    from frugalml.models import space as spaces

    sp = spaces.get("transformer")
    torch.manual_seed(0)
    net = sp.build_supernet(seed=0).train()
    net.register_buffer("nas_step", torch.zeros((), dtype=torch.long))
    train = sp.dataset(quick=True)[0]
    x, y = train.x_train[:16], train.y_train[:16]
    seen = []
    real = sp.set_active
    monkeypatch.setattr(sp, "set_active", lambda n, arch: (seen.append(arch), real(n, arch)))
    no_kd = sn.make_loss(sp, "sandwich", 0, 2, distill=False)(net, x, y)[0]
    archs = list(seen)
    monkeypatch.setattr(sp, "set_active", real)
    with torch.no_grad():  # the transformer has no dropout or BatchNorm: each loss is a function of the weights
        ce = []
        for arch in archs:
            real(net, arch)
            ce.append(float(sp.loss(net, x, y)[0]))
        assert len(archs) == 4 and float(no_kd) == pytest.approx(sum(ce), rel=1e-5)
        net.nas_step.zero_()  # same step, so the same sub-networks, now distilled from the largest
        with_kd = float(sn.make_loss(sp, "sandwich", 0, 2, distill=True)(net, x, y)[0])
    # KL to an untrained teacher's outputs is far below the sub-networks' cross-entropy on the labels
    assert 0 < with_kd - ce[0] < 0.5 * sum(ce[1:])


def test_finetuning_a_searched_subnetwork_records_its_cost_and_improves_training_fit(run, tmp_path):
    from nas_experiment import finetune

    from frugalml.nas.pipeline import load_context

    space, net, _meta, train, _val, test = load_context(run)
    arch = space.smallest()
    sub = space.extract(net, arch)
    space.prepare(sub, train)
    before = space.evaluate(sub, train, split="train")
    res = finetune(space, net, arch, train, train, 2, 0, tmp_path / "ft")
    # evaluated on `train` passed as the test set: two epochs of training must fit it better than none
    assert res["test_accuracy"] > before
    assert res["epochs"] == 2 and res["cost"]["cpu_s"] > 0
    assert finetune(space, net, arch, train, train, 2, 0, tmp_path / "ft") == res  # finished: read back


def test_budget_searches_measure_each_winner_right_after_its_speed_check(run, tmp_path, monkeypatch):
    """Phase D on a machine running 2x slower than its latency data: the speed check finds 2x, the search
    works to 2x the fitted predictor, and a budget only the old speed could meet is measured and flagged."""
    import nas_experiment as ex

    from frugalml.nas import latency as lat
    from frugalml.nas import search as srch
    from frugalml.nas.pipeline import predictor_for

    space = load_supernet(run)[0]
    base = predictor_for(space, run, "host-1t")
    # latency data the predictor fits exactly, taken when the machine ran twice as fast as now
    lrun = tmp_path / "lat"
    for f in (run / "latency").glob("host-1t-*"):
        (lrun / "latency").mkdir(parents=True, exist_ok=True)
        (lrun / "latency" / f.name).write_bytes(f.read_bytes())
    recs = json.loads((run / "latency" / "host-1t.json").read_text())["records"]
    recs = [r | {"latency_ms": base.predict(r["arch"])} for r in recs]
    (lrun / "latency" / "host-1t.json").write_text(json.dumps({"records": recs}))
    calls = []

    def twice_as_slow(space_, net, arch, device, **kw):
        calls.append(space.key(arch))
        return 2 * base.predict(arch) / 1e3

    monkeypatch.setattr(lat, "measure", twice_as_slow)
    low = srch.smallest_achievable(space, base.predict)[0]
    budgets = {"host-1t": [round(6 * low, 4), round(1.5 * low, 4)]}
    evo = {"population": 6, "parents": 2, "mutations": 2, "crossovers": 2, "iterations": 2, "mutate_prob": 0.3}
    s = ex.Settings(
        space="cnn",
        seeds=(0,),
        devices=("host-1t",),
        modelled=(),
        evo=evo,
        speed_references=3,
        random_devices=("host-1t",),
    )
    searches = [{"seed": 0, "searches": [], "random": [], "pareto": {}, "evaluator": []}]
    ex._budget_searches(s, tmp_path, {0: str(run)}, str(lrun), budgets, searches, log=lambda m: None)
    fine, unmet = searches[0]["searches"]
    picked = searches[0]["random"][0]
    # the 3 nets of the latency data nearest the budget, re-measured first
    near = sorted(recs, key=lambda r: abs(r["latency_ms"] - budgets["host-1t"][0]))[:3]
    assert calls[:3] == [space.key(r["arch"]) for r in near]
    assert fine["speed_check"]["factor"] == pytest.approx(2.0)
    # then, before the next budget's check, the winner and the random pick, then the references again
    assert calls[3:5] == [space.key(fine["arch"]), space.key(picked["arch"])]
    assert calls[5:8] == calls[:3] and fine["speed_check"]["factor_after"] == pytest.approx(2.0)
    assert fine["predicted_latency_ms"] == pytest.approx(2 * base.predict(fine["arch"]))
    assert fine["measured_latency_ms"] == pytest.approx(fine["predicted_latency_ms"])
    assert fine["measured_latency_ms"] <= budgets["host-1t"][0]
    # 1.5x the fastest net's old latency: nothing meets it at half the speed; its fastest net is measured anyway
    assert "runs 2.00x as slow as in its latency data" in unmet["unmeetable"]
    assert calls[11] == space.key(unmet["arch"]) and len(calls) == 15
    assert unmet["measured_latency_ms"] > 1.1 * budgets["host-1t"][1]


def test_a_finished_pareto_front_is_reused_until_its_settings_or_latency_data_change(run, monkeypatch):
    from frugalml.nas import pipeline
    from frugalml.nas import search as srch

    first = pipeline.pareto_step(run, "host-1t", population=4, generations=2, measure=False)
    real = srch.pareto
    monkeypatch.setattr(srch, "pareto", lambda *a, **k: pytest.fail("a finished front was searched again"))
    again = pipeline.pareto_step(run, "host-1t", population=4, generations=2, measure=False)
    assert again["hypervolume"] == first["hypervolume"] and again["front"] == first["front"]
    monkeypatch.setattr(srch, "pareto", real)
    other = pipeline.pareto_step(run, "host-1t", population=4, generations=3, measure=False)
    assert other["settings"]["generations"] == 3


def test_a_finished_search_run_again_keeps_the_cost_it_recorded(run):
    from frugalml.nas import search as srch
    from frugalml.nas.pipeline import predictor_for, search_step

    space = load_supernet(run)[0]
    budget = round(predictor_for(space, run, "host-1t").predict(space.largest()) * 0.9, 4)
    cfg = srch.EvolutionConfig(population=6, parents=2, mutations=2, crossovers=2, iterations=2)
    first = search_step(run, "host-1t", budget, cfg, progress=False, measure=False)
    again = search_step(run, "host-1t", budget, cfg, progress=False, measure=False)
    assert again["resumed_from_generation"] == again["generations"] == 2
    assert again["arch"] == first["arch"] and again["cost"] == first["cost"] and first["cost"]["cpu_s"] > 0


def test_a_slow_spell_through_the_measurement_passes_gets_extra_passes(run, tmp_path, monkeypatch):
    """The references measured among the winners are the control: while they run >10% off the speed
    check, more passes are taken (and counted); every figure is its fastest pass."""
    import nas_experiment as ex

    from frugalml.nas import latency as lat
    from frugalml.nas import search as srch
    from frugalml.nas.pipeline import predictor_for

    space = load_supernet(run)[0]
    base = predictor_for(space, run, "host-1t")
    recs = json.loads((run / "latency" / "host-1t.json").read_text())["records"]
    calls = []

    def spell(space_, net, arch, device, **kw):  # calls 3-7 (first pass: winner, pick, 3 references) 1.5x slow
        calls.append(space.key(arch))
        data = {space.key(r["arch"]): r["latency_ms"] for r in recs}
        ms = data.get(space.key(arch), base.predict(arch))
        return (1.5 if 3 <= len(calls) - 1 <= 7 else 1.0) * ms / 1e3

    monkeypatch.setattr(lat, "measure", spell)
    monkeypatch.setattr(ex, "EXTRA_PASS_WAIT_S", 0.0)
    low = srch.smallest_achievable(space, base.predict)[0]
    budgets = {"host-1t": [round(5 * low, 4)]}
    evo = {"population": 6, "parents": 2, "mutations": 2, "crossovers": 2, "iterations": 2, "mutate_prob": 0.3}
    s = ex.Settings(
        space="cnn",
        seeds=(0,),
        devices=("host-1t",),
        modelled=(),
        evo=evo,
        speed_references=3,
        random_devices=("host-1t",),
    )
    searches = [{"seed": 0, "searches": [], "random": [], "pareto": {}, "evaluator": []}]
    ex._budget_searches(s, tmp_path, {0: str(run)}, str(run), budgets, searches, log=lambda m: None)
    won = searches[0]["searches"][0]
    speed = won["speed_check"]
    assert speed["factor"] == pytest.approx(1.0) and speed["factor_after"] == pytest.approx(1.0)
    assert speed["extra_passes"] == 1 and len(calls) == 3 + 5 + 5
    data = {space.key(r["arch"]): r["latency_ms"] for r in recs}
    assert won["measured_latency_ms"] == pytest.approx(data.get(space.key(won["arch"]), base.predict(won["arch"])))
