"""`frugal nas` as a practitioner chains it (issue 18): each command ends with `-> PATH`, the next
takes that path as printed; `--quick` gives smoke-sized defaults that options given still beat;
modelled targets say so; degenerate results warn on stderr and in the JSON."""

import json

import pytest
from clirun import frugal, saved

from frugalml.cli import main
from frugalml.nas import cli as nas_cli


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """train -> latency -> search -> export, each given the path the one before printed."""
    import contextlib
    import io

    def run(*args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        assert exc.value.code == 0, err.getvalue()
        return out.getvalue(), err.getvalue()

    root = tmp_path_factory.mktemp("chain")
    steps = {}
    steps["train"] = run("nas", "train", "--quick", "--epochs", "1", "--sampling", "uniform", "--out", root / "sn")
    steps["latency"] = run("nas", "latency", "--run", saved(steps["train"][0]), "--quick", "--json")
    steps["search"] = run(
        "nas", "search", "--run", saved(steps["latency"][1]), "--quick", "--latency-ms", "100", "--json"
    )
    search_dir = saved(steps["search"][1])
    steps["export"] = run(
        "nas", "export", "--run", root / "sn", "--arch", search_dir, "--out", root / "exp", "--finetune-epochs", "1"
    )
    return root, steps


def test_each_command_ends_with_the_path_the_next_one_takes(chain):
    root, steps = chain
    sn = root / "sn"
    assert saved(steps["train"][0]) == str(sn) and (sn / "record.json").is_file()
    assert saved(steps["latency"][1]) == str(sn / "latency" / "host-1t")  # --json: the path goes to stderr
    assert saved(steps["search"][1]) == str(sn / "search" / "host-1t-100ms")
    assert saved(steps["export"][0]) == str(root / "exp") and (root / "exp" / "model.safetensors").is_file()
    data = json.loads((sn / "latency" / "host-1t.json").read_text())["records"]
    ms = [r["latency_ms"] for r in data]
    assert json.loads(steps["latency"][0])["latency_range_ms"] == [min(ms), max(ms)]
    for step in ("latency", "search"):  # stdout stays one JSON object
        assert json.loads(steps[step][0])["run_dir"] == saved(steps[step][1])


def test_quick_sets_only_what_was_not_given(chain):
    root, steps = chain
    nas = json.loads((root / "sn" / "nas.json").read_text())["config"]
    assert nas["quick"] is True and nas["train"]["epochs"] == 1  # --epochs 1 given: it wins over --quick's 3
    assert json.loads(steps["latency"][0])["samples"] == nas_cli.QUICK_LATENCY["samples"]
    cfg = json.loads(steps["search"][0])["config"]
    assert {k: cfg[k] for k in ("population", "parents", "iterations")} == {
        k: nas_cli.QUICK_SEARCH[k] for k in ("population", "parents", "iterations")
    }
    assert len(json.loads(steps["search"][0])["speed_check"]["references"]) == nas_cli.QUICK_SEARCH["speed_check"]


def test_export_prints_the_accuracy_after_fine_tuning_and_before(chain):
    root, steps = chain
    info = json.loads((root / "exp" / "export.json").read_text())
    line = steps["export"][0].splitlines()[0]
    after, before = info["test_accuracy_finetuned"], info["test_accuracy"]
    assert line.startswith(f"exported: test accuracy {after:.3f} after 1 epochs of fine-tuning ({before:.3f} before)")


def test_a_modelled_target_is_called_modelled(chain, capsys):
    root, _ = chain
    out, _ = frugal(capsys, "nas", "search", "--run", root / "sn", "--target", "rpi4", "--latency-ms", "5", "--quick")
    best = next(line for line in out.splitlines() if line.startswith("best under"))
    assert "modelled" in best and "measured" not in best
    assert saved(out) == str(root / "sn" / "search" / "rpi4-5ms")


def test_a_winner_over_its_budget_when_measured_warns(chain, capsys, monkeypatch):
    """The winner's measurement is made 1000x slower: one warning line, also in the JSON."""
    from frugalml.nas import latency

    root, _ = chain
    real = latency.measure
    monkeypatch.setattr(latency, "measure", lambda *a, **k: 1000 * real(*a, **k))
    args = ["nas", "search", "--run", root / "sn", "--latency-ms", "101", "--quick", "--speed-check", "0", "--json"]
    out, err = frugal(capsys, *args)
    res = json.loads(out)
    assert res["measured_latency_ms"] > 101
    warnings = [line for line in err.splitlines() if line.startswith("frugal: warning:")]
    assert len(warnings) == 1 and "over the 101 ms budget" in warnings[0]
    assert res["warnings"] == [warnings[0].removeprefix("frugal: warning: ")]


def test_a_long_default_run_says_so_before_it_starts(tmp_path, capsys, monkeypatch):
    from frugalml.errors import FrugalError
    from frugalml.nas import records

    def not_training(*a, **k):
        raise FrugalError("stopped before training")

    monkeypatch.setattr(records, "train", not_training)
    with pytest.raises(SystemExit):
        main(["nas", "train", "--epochs", "100", "--out", str(tmp_path / "sn")])
    lines = capsys.readouterr().err.strip().splitlines()
    minutes = round(100 * nas_cli.EPOCH_S["cnn"] / 60)
    assert lines[0] == (
        f"frugal: note: nas train --space cnn --epochs 100 with these settings takes roughly {minutes} min on 2 CPU "
        f"cores ({nas_cli.EPOCH_S['cnn']:.3g} s per epoch of the full data, from {nas_cli.EPOCH_S['cnn']:g} s "
        "measured here); "
        "--quick runs a smoke-sized version"
    )
    assert lines[1] == "frugal: error: stopped before training"
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["nas", "train", "--epochs", "5", "--out", str(tmp_path / "sn")])  # about a minute: no note
    assert capsys.readouterr().err.strip() == "frugal: error: stopped before training"
    with pytest.raises(SystemExit):  # uniform: one sub-network per step, a quarter of the time: no note
        main(["nas", "train", "--epochs", "100", "--sampling", "uniform", "--out", str(tmp_path / "sn")])
    assert capsys.readouterr().err.strip() == "frugal: error: stopped before training"


def test_a_long_search_says_so_with_its_estimate(chain, capsys, monkeypatch):
    root, _ = chain
    from frugalml.report import console

    monkeypatch.setattr(console, "LONG_RUN_S", 0.0)
    args = ["nas", "search", "--run", root / "sn", "--target", "rpi4", "--latency-ms", "4", "--population", "6"]
    _, err = frugal(capsys, *args, "--parents", "2", "--mutations", "2", "--crossovers", "2", "--iterations", "2")
    notes = [line for line in err.splitlines() if line.startswith("frugal: note:")]
    assert len(notes) == 1 and notes[0].startswith("frugal: note: nas search (10 evaluations at most) with these")
    assert "s per evaluation timed now" in notes[0]


def test_export_compares_its_latency_with_the_largest_and_shows_the_spread(chain, tmp_path, capsys):
    from frugalml.files import write_json
    from frugalml.models import space as spaces
    from frugalml.report import record

    root, _ = chain
    write_json(tmp_path / "small.json", spaces.get("cnn").smallest())
    args = ["nas", "export", "--run", root / "sn", "--arch", tmp_path / "small.json", "--target", "host-1t"]
    out, _ = frugal(capsys, *args, "--out", tmp_path / "exp")
    m = record.read(tmp_path / "exp")
    line = next(line for line in out.splitlines() if line.startswith("latency on host-1t"))
    assert "spread" in line and "over 8 rounds" in line
    before, after = m["before"]["latency_s"], m["after"]["latency_s"]
    assert after < before  # the smallest sub-network against the largest, measured
    assert f"{after * 1e3:.3f} ms vs {before * 1e3:.3f} ms" in line

    out, err = frugal(capsys, *args[:-2], "--target", "rpi4", "--out", tmp_path / "exp2", "--json")
    lat = json.loads(out)["latency"]
    assert lat["modelled"] and "spread" not in lat and "warnings" not in json.loads(out)
    assert lat["ratio"] == pytest.approx(lat["latency_ms"] / lat["largest_ms"])


def test_export_warns_when_the_ratio_is_within_its_spread(chain, tmp_path, capsys, monkeypatch):
    """Every timing equal: each round's ratio is 1, so the spread holds 1 - no measured difference."""
    from frugalml.nas import latency

    root, _ = chain
    monkeypatch.setattr(latency, "time_module", lambda *a, **k: 1e-3)
    args = ["nas", "export", "--run", root / "sn", "--arch", saved_search(root), "--target", "host-1t"]
    out, err = frugal(capsys, *args, "--out", tmp_path / "exp", "--json")
    res = json.loads(out)
    assert res["latency"]["spread"] == [1.0, 1.0] and res["latency"]["ratio"] == 1.0
    warnings = [line for line in err.splitlines() if line.startswith("frugal: warning:")]
    assert warnings == ["frugal: warning: " + res["warnings"][0]] and "within the measurement spread" in warnings[0]


def saved_search(root):
    return root / "sn" / "search" / "host-1t-100ms"


def test_a_run_directory_of_another_configuration_is_refused_before_the_long_run_note(chain, tmp_path, capsys):
    """The note of a long run never precedes an error: bad input stays one line. The directory
    is bound to the --quick 1-epoch supernet's configuration and has not finished training."""
    import shutil

    root, _ = chain
    (tmp_path / "sn").mkdir()
    shutil.copy(root / "sn" / "nas.json", tmp_path / "sn" / "nas.json")
    with pytest.raises(SystemExit) as exc:
        main(["nas", "train", "--epochs", "100", "--out", str(tmp_path / "sn")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "holds a supernet with a different configuration" in err
    assert sorted(p.name for p in (tmp_path / "sn").iterdir()) == ["nas.json"]
