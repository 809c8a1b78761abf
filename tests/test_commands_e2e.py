"""End to end through the `frugal` command: every command that had no success-path test,
run as a user would (human-readable output), its table title and a figure checked against
the JSON it wrote or against a hand count."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frugalml import cli

cli._add_groups()


def frugal(*args: str) -> str:
    """What `frugal ARGS` prints on stdout; fails the test on a non-zero exit."""
    res = CliRunner().invoke(cli.app, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.stdout


def squeeze(text: str) -> str:
    """Rich may wrap a long title or line: compare with runs of white space folded."""
    return re.sub(r"\s+", " ", text)


# ---- commands of the house ----


def test_models_lists_each_network_with_its_default_input():
    from frugalml import models

    listed = json.loads(frugal("models", "--json"))
    assert {"mlp", "mobilenet_v2", "resnet18"} <= set(listed)
    assert listed["mlp"]["default_input"] == list(models.default_input("mlp"))
    human = frugal("models")
    assert "models" in human.splitlines()[0]
    # the table's row for mobilenet_v2 shows the registry's default input shape
    shape = "x".join(map(str, models.default_input("mobilenet_v2")))
    assert re.search(rf"mobilenet_v2\s+│\s+{shape}\s", human), human


def test_profile_training_and_latency_human_output_for_the_mlp():
    # LeNet-300-100 on 784 inputs: forward MACs by hand
    fwd_macs = 784 * 300 + 300 * 100 + 100 * 10
    # one training step: the first layer's input needs no gradient (weights only: 2x forward),
    # the other two also pass a gradient back to their input (3x forward); FLOPs = 2 x MACs
    train_flops = 2 * (2 * 784 * 300 + 3 * (300 * 100 + 100 * 10))
    prof = json.loads(frugal("profile", "--model", "mlp", "--training", "--json"))
    assert prof["macs"] == fwd_macs
    assert prof["train_flops"] == train_flops
    human = squeeze(frugal("profile", "--model", "mlp", "--training", "--latency", "--threads", "1"))
    assert "mlp on input 1x784" in human
    assert f"total: {266_610:,} params" in human  # 784*300+300 + 300*100+100 + 100*10+10
    assert "training step (fwd+bwd, counted): 1.13 MFLOPs" in human  # 1,126,800
    lat = re.search(r"latency: ([\d.]+) ms median \(IQR ([\d.]+) ms, ([\d,]+) calls, 1 thread\(s\)\)", human)
    assert lat, human
    assert int(lat.group(3).replace(",", "")) >= 20  # at least the minimum number of timed calls


def test_hardware_measure_reports_the_host_throughput_from_its_matmul_timing(monkeypatch):
    """The host row carries 2 n^3 / (median time of one n x n matmul), from torch.utils.benchmark."""
    from torch.utils import benchmark

    class FakeTimer:
        def __init__(self, stmt, globals, num_threads):
            assert stmt == "a @ b" and globals["a"].shape == (512, 512)

        def blocked_autorange(self, min_run_time):
            class M:
                median = 1e-3  # one 512x512 matmul in 1 ms

            return M()

    monkeypatch.setattr(benchmark, "Timer", FakeTimer)
    expected = 2 * 512**3 / 1e-3 / 1e12  # 0.268 TFLOPS
    rows = {h["name"]: h for h in json.loads(frugal("hardware", "--measure", "--json"))["hardware"]}
    assert rows["host"]["sustained_tflops"] == pytest.approx(expected)
    assert "measured 512x512 FP32 matmul" in rows["host"]["source"]
    human = frugal("hardware", "--measure")
    assert human.splitlines()[0].strip() == "hardware profiles"
    from frugalml.report.console import fmt_num

    assert re.search(rf"│ host\s.*│\s+{re.escape(fmt_num(expected))} │", human), human
    # without --measure the host's sustained throughput is unknown, not made up
    unmeasured = {h["name"]: h for h in json.loads(frugal("hardware", "--json"))["hardware"]}
    assert unmeasured["host"]["sustained_tflops"] is None


# ---- lottery tickets: find -> stability -> transfer -> export -> report ----


@pytest.fixture(scope="module")
def ticket_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tickets") / "run"
    frugal("tickets", "find", "--data", "digits", "--levels", "1", "--seeds", "0-0", "--epochs", "1", "--out", out)
    return out


def test_tickets_stability_prints_the_barrier_it_saved(ticket_run):
    human = squeeze(frugal("tickets", "stability", "--run", ticket_run, "--level", "1", "--points", "3"))
    saved = json.loads((ticket_run / "level_1" / "stability.json").read_text())
    assert f"stability: level 1 ({100 * saved['remaining']:.1f}% remaining), rewind 0" in human
    assert f"mean barrier {100 * saved['barrier']:.2f}%" in human
    assert len(saved["seeds"]) == 1 and saved["seeds"][0]["seed"] == 0


def test_tickets_transfer_prints_the_accuracies_it_saved(ticket_run):
    human = squeeze(frugal("tickets", "transfer", "--run", ticket_run / "level_1", "--data", "digits:classes=5-9"))
    res = json.loads((ticket_run / "level_1" / "transfer" / "digits_classes=5-9" / "result.json").read_text())
    assert f"at {100 * res['remaining']:.1f}% remaining (output layer re-initialised: True)" in human
    acc = res["transferred_accuracy"]
    assert f"transferred ticket │ {100 * acc['mean']:.2f} ± {100 * acc['std']:.2f}" in human


def test_tickets_export_prints_file_sizes_that_are_the_files_on_disk(ticket_run):
    human = squeeze(frugal("tickets", "export", "--run", ticket_run / "level_1"))
    out = ticket_run / "level_1" / "seed_0" / "export_compact"
    exported = (out / "model.safetensors").stat().st_size
    m = re.search(r"file size \(bytes\) │ ([\d,]+) │ ([\d,]+) │", human)
    assert m, human
    assert int(m.group(2).replace(",", "")) == exported


def test_report_writes_a_page_with_the_runs_quality_figure(ticket_run, tmp_path):
    page = tmp_path / "page.html"
    printed = frugal("report", ticket_run, "--html", page, "--title", "tickets e2e")
    assert Path(printed.strip().splitlines()[-1].removeprefix("-> ")) == page
    html = page.read_text()
    rec = json.loads((ticket_run / "record.json").read_text())
    assert "<title>tickets e2e</title>" in html
    assert f"{rec['quality']['accuracy']['value']:.4f}" in html
    assert "data:image/png;base64," in html  # the accuracy-vs-remaining plot is embedded


# ---- NAS: spaces, train (cnn and transformer), latency, pareto ----


def test_nas_spaces_lists_the_genes_of_both_spaces():
    from frugalml.models.space import get as get_space

    human = frugal("nas", "spaces")
    for name in ("cnn", "transformer"):
        sp = get_space(name)
        assert f"{name}: {len(sp.genes)} genes" in human
        gene, values = next(iter(sp.genes.items()))
        assert f"  {gene}: {list(values)}" in human


@pytest.mark.parametrize("space", ["cnn", "transformer"])
def test_nas_train_prints_what_its_record_holds(space, tmp_path):
    out = tmp_path / space
    args = ("--space", space, "--quick", "--epochs", "1", "--sampling", "uniform", "--out", out)
    human = squeeze(frugal("nas", "train", *args))
    result = json.loads((out / "result.json").read_text())
    assert f"supernet '{space}' trained 1 epochs" in human
    assert f"({result['params']:,} params)" in human
    assert f"largest sub-network val accuracy {result['largest_val_accuracy_unrecalibrated']:.3f}" in human


@pytest.fixture(scope="module")
def nas_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nas") / "cnn"
    frugal("nas", "train", "--quick", "--epochs", "1", "--sampling", "uniform", "--out", out)
    return out


def test_nas_latency_and_pareto_human_tables_show_what_they_saved(nas_run):
    from frugalml.report.console import fmt_num

    human = squeeze(frugal("nas", "latency", "--run", nas_run, "--target", "host-1t", "--samples", "12"))
    metrics = json.loads((nas_run / "latency" / "host-1t-metrics.json").read_text())
    assert f"latency predictors on host-1t: {metrics['n_test']} held-out of 12 measured" in human
    assert (
        f"MLP predictor (HAT) │ {fmt_num(metrics['mlp']['rmse_ms'])} │ {fmt_num(metrics['mlp']['mape_pct'])}" in human
    )
    human = squeeze(
        frugal("nas", "pareto", "--run", nas_run, "--target", "host-1t", "--population", "6", "--generations", "2")
    )
    front = json.loads((nas_run / "search" / "host-1t-pareto.json").read_text())
    hv = front["hypervolume"]
    assert f"hypervolume NSGA-II {fmt_num(hv['nsga2'])} vs random {fmt_num(hv['random'])}" in human
    assert "front on host-1t (measured members)" in human
    first = front["measured_front"][0]
    assert f"{fmt_num(first['measured_latency_ms'])} │ {fmt_num(first['test_accuracy'])} │ {first['macs']:,}" in human
