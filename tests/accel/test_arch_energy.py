"""Arch specs (shipped and user files), results, Cost, sparsity and the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from frugalml.accel import Layer, analyze, arch_names, from_dict, load_arch
from frugalml.errors import FrugalError
from tests.accel.nets import TINY_SPEC

FRUGAL = str(Path(sys.executable).parent / "frugal")
ROOT = str(Path(__file__).parents[2])
# the tiny accelerator, renamed, with energies in pJ
SPEC = TINY_SPEC | {
    "name": "mine",
    "energy": {"unit": "pJ", "dram": 640.0, "glb": 12.0, "array": 4.0, "rf": 1.0, "mac": 2.0},
}


def test_shipped_specs_load_with_the_published_sizes():
    assert {"eyeriss-v1", "isca16", "eyeriss-v2"} <= set(arch_names())
    v1 = load_arch("eyeriss-v1")
    assert v1.pes == 168 and v1.glb_bytes == 108 * 1024 and v1.word_bytes == 2 and v1.clock_hz == 200e6
    isca = load_arch("isca16")
    assert isca.pes == 256 and isca.rf_bytes == 512 and isca.glb_bytes == 128 * 1024
    assert isca.energy == {"dram": 200, "glb": 6, "array": 2, "rf": 1, "mac": 1}
    assert load_arch("eyeriss-v2").sparse


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"glb_bytes": -5}, "'glb_bytes' must be positive"),
        ({"rf_bytes": None}, "missing 'rf_bytes'"),
        ({"pe_array": [4]}, "'pe_array' must be"),
        ({"energy": {"unit": "kcal", "dram": 1, "glb": 1, "array": 1, "rf": 1, "mac": 1}}, "energy unit"),
        ({"energy": {"dram": 1, "glb": 1, "array": 1, "rf": 1}}, "missing 'mac'"),
        ({"glb_bypass": ["outputs"]}, "'glb_bypass' must list tensors among weights, inputs"),
        ({"area": {"rf_per_byte": 2}}, "missing 'glb_per_byte'"),
        ({"energy_sources": {"dram": "a paper"}}, "no source for glb, array, rf, mac"),
    ],
)
def test_bad_arch_specs_raise_one_clear_error(change, message):
    with pytest.raises(FrugalError, match=message):
        from_dict(SPEC | change)


def test_absolute_spec_gives_joules_and_normalised_does_not():
    layer = Layer("fc", "fc", N=2, M=4, C=4)
    res = analyze([layer], from_dict(SPEC), "rs")
    tot = res.total()
    # energy = sum over levels of accesses x pJ per access, + MACs x 2 pJ
    by_hand = sum(tot["accesses"][lv]["total"] * SPEC["energy"][lv] for lv in ("dram", "glb", "array", "rf"))
    by_hand += 2.0 * 32
    assert tot["energy"]["total"] == pytest.approx(by_hand)
    cost = res.cost()
    assert cost.energy_j == pytest.approx(by_hand * 1e-12) and cost.macs == 32
    assert "absolute" in cost.notes["energy_j"]
    norm = analyze([layer], from_dict(SPEC | {"energy": {"dram": 200, "glb": 6, "array": 2, "rf": 1, "mac": 1}}), "rs")
    assert norm.cost().energy_j is None and "normalised" in norm.cost().notes["energy_j"]


def test_sparse_estimate_scales_macs_and_weight_traffic_by_density():
    dense_layer = Layer("fc", "fc", N=4, M=16, C=16)
    half = Layer("fc", "fc", N=4, M=16, C=16, weight_density=0.5, input_density=1.0)
    arch = load_arch("isca16")
    dense = analyze([half], arch, "rs", sparse=False).total()
    sparse = analyze([half], arch, "rs", sparse=True).total()
    plain = analyze([dense_layer], arch, "rs", sparse=False).total()
    assert dense["energy"] == plain["energy"] and dense["accesses"] == plain["accesses"]  # densities unused
    assert sparse["macs_effective"] == dense["macs"] / 2
    assert sparse["energy"]["mac"] == dense["energy"]["mac"] / 2
    assert sparse["accesses"]["dram"]["weights"] == dense["accesses"]["dram"]["weights"] / 2
    assert sparse["accesses"]["dram"]["outputs"] == dense["accesses"]["dram"]["outputs"]  # psums stay dense
    # skipping halves both the work and the cycles, so the array is as busy as before
    assert sparse["cycles"] == dense["cycles"] / 2
    assert sparse["utilization"] == pytest.approx(dense["utilization"]) and sparse["utilization"] <= 1


def run(*args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    if env_extra and "PYTHONPATH" in env_extra and os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] += os.pathsep + os.environ["PYTHONPATH"]  # and the frugalml under test still importable
    return subprocess.run([FRUGAL, "accel", *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_energy_json_has_layers_and_total(tmp_path):
    plot = tmp_path / "e.png"
    r = run(
        "energy",
        "--model",
        "tests.accel.nets:tiny_cnn",
        "--input",
        "1,3,16,16",
        "--batch-size",
        "4",
        "--accel",
        "eyeriss-v1",
        "--json",
        "--plot",
        str(plot),
        env_extra={"PYTHONPATH": ROOT},
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # by hand, batch 4: conv 3->8 3x3 on 16x16 (pad 1), conv 8->8 3x3 stride 2 -> 7x7, fc 392 -> 10
    assert out["total"]["macs"] == 4 * (8 * 3 * 9 * 16 * 16 + 8 * 8 * 9 * 7 * 7 + 392 * 10)
    assert [layer["kind"] for layer in out["layers"]] == ["conv", "conv", "fc"]
    for entry in [*out["layers"], out["total"]]:
        assert {"macs", "accesses", "energy", "dram_per_mac", "utilization"} <= set(entry)
        assert set(entry["accesses"]) == {"dram", "glb", "array", "rf"}
        assert entry["energy"]["total"] == pytest.approx(sum(v for k, v in entry["energy"].items() if k != "total"))
    assert 0 < out["total"]["utilization"] <= 1
    # eyeriss-v1 gives pJ per access: joules, and watts over the modelled time
    tot = out["total"]
    assert out["energy_unit"] == "pJ" and out["cost"]["energy_j"] == pytest.approx(tot["energy"]["total"] * 1e-12)
    assert tot["power_w"] == pytest.approx(tot["energy_j"] / tot["latency_s"])
    assert tot["onchip_energy_j"] == pytest.approx((tot["energy"]["total"] - tot["energy"]["dram"]) * 1e-12)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _record_shown(run_dir, kind):
    """The run's record (validated), after checking that `frugal show` prints it."""
    from frugalml.report import record

    rec = record.read(run_dir)
    assert rec["kind"] == kind and rec["quality"] == {} and rec["spent"]["cpu_s"] > 0
    assert json.loads((run_dir / "result.json").read_text())  # the run's own JSON, beside the record
    for path in rec["artifacts"].values():
        assert (run_dir / path).exists(), path
    shown = subprocess.run([FRUGAL, "show", str(run_dir)], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert kind in shown.stdout and "MACs" in shown.stdout
    return rec


def test_cli_energy_out_writes_a_run_with_its_record(tmp_path):
    run_dir = tmp_path / "run"
    # isca16 has normalised energies (eyeriss-v1 gives pJ since it has sourced ones)
    tiny = ["--model", "tests.accel.nets:tiny_cnn", "--input", "1,3,16,16", "--accel", "isca16"]
    r = run(
        "energy",
        *tiny,
        "--out",
        str(run_dir),
        "--json",
        env_extra={"PYTHONPATH": ROOT},
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert json.loads((run_dir / "result.json").read_text())["total"] == out["total"]
    rec = _record_shown(run_dir, "accel.energy")
    assert rec["before"] is None and rec["artifacts"]["plot"] == "energy_per_layer.png"
    after = rec["after"]
    assert after["macs"] == out["total"]["macs"] and after["latency_s"] == pytest.approx(out["total"]["latency_s"])
    assert "energy_j" not in after  # normalised energies are not joules: the total is in the notes
    assert float(after["notes"]["energy_normalized"]) == pytest.approx(out["total"]["energy"]["total"], rel=1e-5)
    assert [p["label"] for p in rec["points"]] == [layer["name"] for layer in out["layers"]]
    for p, layer in zip(rec["points"], out["layers"]):
        assert p["cost"]["macs"] == layer["macs"]
        assert float(p["cost"]["notes"]["energy_normalized"]) == pytest.approx(layer["energy"]["total"], rel=1e-5)


def test_cli_compare_json_lists_every_dataflow(tmp_path):
    r = run(
        "compare",
        "--out",
        str(tmp_path / "run"),
        "--model",
        "tests.accel.nets:tiny_cnn",
        "--input",
        "2,3,16,16",
        "--accel",
        "isca16",
        "--json",
        env_extra={"PYTHONPATH": ROOT},
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["dataflows"]) == {"rs", "ws", "os", "nlr"}
    for row in out["dataflows"].values():
        assert {"conv_energy_per_mac", "fc_energy_per_mac", "total_energy"} <= set(row)
        assert row["conv_energy_per_mac"] > 1  # at least the MAC itself
        # isca16 has an area model, so equal area by default: 256 x 512 B x 2 + 128 kB = 393216 area units
        assert 256 * row["rf_bytes"] * 2 + row["glb_bytes"] == pytest.approx(393216, abs=2)
    assert out["equal_area"] is True
    assert out["dataflows"]["nlr"]["rf_bytes"] == 0 and out["dataflows"]["nlr"]["glb_bytes"] == 393216
    run_dir = tmp_path / "run"
    assert json.loads((run_dir / "result.json").read_text())["dataflows"] == out["dataflows"]
    rec = _record_shown(run_dir, "accel.compare")
    rows = out["dataflows"]
    best = min(rows, key=lambda n: rows[n]["total_energy"])
    assert rec["before"]["notes"]["dataflow"].startswith("rs:")
    assert rec["after"]["notes"]["dataflow"].startswith(f"{best}:")
    assert float(rec["before"]["notes"]["energy_normalized"]) == pytest.approx(rows["rs"]["total_energy"], rel=1e-5)
    assert float(rec["after"]["notes"]["energy_normalized"]) == pytest.approx(rows[best]["total_energy"], rel=1e-5)
    points = {p["label"]: p["cost"] for p in rec["points"]}
    assert set(points) == set(rows)
    for name, cost in points.items():
        assert float(cost["notes"]["energy_normalized"]) == pytest.approx(rows[name]["total_energy"], rel=1e-5)


def test_cli_archs_lists_shipped_specs():
    r = run("archs", "--json")
    assert r.returncode == 0
    assert {a["name"] for a in json.loads(r.stdout)["archs"]} >= {"eyeriss-v1", "isca16", "eyeriss-v2"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["energy", "--accel", "ARCHFILE"], "'glb_bytes' must be positive"),
        (["energy", "--accel", "nope"], "unknown arch 'nope'"),
        (["energy", "--dataflow", "xyz"], "unknown dataflow 'xyz'"),
        (["energy", "--model", "tests.accel.nets:conv3d", "--input", "1,1,4,4,4"], "unsupported module types"),
        (["energy", "--accel", "TINYRF", "--layers", "conv"], "features.0 cannot fit any rs mapping"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, args, message, capsys, monkeypatch):
    import yaml

    from frugalml.cli import main

    monkeypatch.syspath_prepend(str(Path(__file__).parents[2]))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(SPEC | {"glb_bytes": -1}))
    tiny_rf = tmp_path / "tiny.yaml"
    tiny_rf.write_text(yaml.safe_dump(SPEC | {"rf_bytes": 8}))
    args = [str(bad) if a == "ARCHFILE" else str(tiny_rf) if a == "TINYRF" else a for a in args]
    with pytest.raises(SystemExit) as exit_:
        main(["accel", *args])  # the CLI entry point, in process (no torch start-up per case)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


@pytest.mark.slow
def test_demo_step_returns_before_after_rows(tmp_path):
    from frugalml.accel.demo import demo

    rows = demo(tmp_path, quick=True, console=None)
    assert [r["technique"] for r in rows] == ["accel", "accel"]
    assert rows[0]["after"] < rows[0]["before"]  # row stationary below no local reuse
    assert rows[1]["after"] <= rows[1]["before"]  # skipping zeros never costs more in this model
    assert (tmp_path / "alexnet_rs_isca16.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_compare_equal_storage_keeps_the_spec_sizes():
    r = run(
        "compare",
        *("--model", "tests.accel.nets:tiny_cnn", "--input", "2,3,16,16", "--accel", "isca16"),
        *("--dataflows", "rs,nlr", "--equal-storage", "--json"),
        env_extra={"PYTHONPATH": ROOT},
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["equal_area"] is False
    assert {(row["rf_bytes"], row["glb_bytes"]) for row in out["dataflows"].values()} == {(512, 131072)}
