"""The `frugal` command end to end, as a user runs it (subprocess of the console script)."""

import json
import subprocess
import sys

import pytest


def run(frugal_bin, *args, check=False):
    p = subprocess.run([frugal_bin, *args], capture_output=True, text=True, timeout=300)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys, frugalml.cli as c; c._add_groups(); print('torch' in sys.modules, 'pandas' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.stdout.split() == ["False", "False"], p.stderr


def test_help_lists_the_commands(frugal_bin):
    # its speed is measured by benchmarks/bench_cli_startup.py, not asserted here
    p = run(frugal_bin, "--help", check=True)
    assert "profile" in p.stdout and "estimate" in p.stdout


def test_estimate_gpt3_json(frugal_bin):
    p = run(
        frugal_bin,
        "estimate",
        "--flops",
        "3.14e23",
        "--hardware",
        "v100",
        "--sustained-tflops",
        "28",
        "--price-per-hour",
        "1.5",
        "--json",
        check=True,
    )
    out = json.loads(p.stdout)
    assert set(out) >= {"device_hours", "device_years", "energy_kwh", "co2e_kg", "co2e_lbs", "cost_usd"}
    assert out["device_years"] == pytest.approx(355, rel=0.02)
    assert out["cost_usd"] == pytest.approx(4.6e6, rel=0.02)


def test_estimate_strubell_nas_json(frugal_bin):
    p = run(
        frugal_bin,
        "estimate",
        "--power-w",
        "1515.43",
        "--hours",
        "274120",
        "--pue",
        "1.58",
        "--intensity",
        "432.7",
        "--json",
        check=True,
    )
    out = json.loads(p.stdout)
    assert out["co2e_lbs"] == pytest.approx(626_155, rel=0.01)


def test_profile_json_keys_and_user_model(frugal_bin):
    p = run(frugal_bin, "profile", "--model", "mlp", "--input", "2,784", "--json", check=True)
    out = json.loads(p.stdout)
    assert set(out) >= {"params", "nonzero_params", "macs", "macs_effective", "flops", "layers"}
    assert out["macs"] == 2 * (784 * 300 + 300 * 100 + 100 * 10)
    p = run(frugal_bin, "profile", "--model", "torch.nn:Flatten", "--input", "1,4", "--json", check=True)
    assert json.loads(p.stdout)["macs"] == 0


def test_track_measures_a_command(frugal_bin, tmp_path):
    p = run(frugal_bin, "track", "--region", "DEU", "--json", "--", sys.executable, "-c", "print(sum(range(10**6)))")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)  # the command's own output went to stderr
    assert "499999500000" in p.stderr
    assert out["returncode"] == 0 and out["wall_s"] > 0 and out["region"] == "DEU"
    p = run(frugal_bin, "track", "--", sys.executable, "-c", "raise SystemExit(3)")
    assert p.returncode == 3  # the tracked command's status is passed through


def test_hardware_lists_profiles_with_sources(frugal_bin):
    out = json.loads(run(frugal_bin, "hardware", "--json", check=True).stdout)
    names = {h["name"] for h in out["hardware"]}
    assert {"v100", "a100", "h100", "t4", "tpu-v3", "rpi4", "snapdragon-855", "eyeriss", "host"} <= names
    assert all(h["source"] for h in out["hardware"])


@pytest.mark.parametrize(
    "args,message",
    [
        (["profile", "--model", "resnet9000"], "unknown model 'resnet9000'"),
        (["profile", "--model", "mlp", "--input", "1,x"], "malformed --input"),
        (["estimate", "--flops", "1e20", "--hardware", "cray-1"], "unknown hardware 'cray-1'"),
        (["estimate", "--power-w", "100", "--hours", "-3"], "hours must be positive"),
        (["estimate", "--power-w", "100", "--hours", "3", "--region", "XYZ"], "unknown region 'XYZ'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(frugal_bin, args, message):
    p = run(frugal_bin, *args)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], p.stderr


def test_demo_quick_writes_run_dir(frugal_bin, tmp_path):
    p = run(frugal_bin, "demo", "--quick", "--out", str(tmp_path / "demo"), "--json", check=True)
    out = json.loads(p.stdout)
    from frugalml.techniques import TECHNIQUES

    # every row, not just the first: foundation, then each technique's rows in the table's order
    order = [r["technique"] for r in out["rows"]]
    assert order[0] == "foundation" and order.count("foundation") == 1
    assert list(dict.fromkeys(order)) == ["foundation", *[t.name for t in TECHNIQUES if t.name in order]]
    assert {"tickets", "video", "accel", "analog"} <= set(order)
    for r in out["rows"]:
        assert r["what"] and r["metric"] and r["before"] is not None and r["after"] is not None, r
        assert r["ratio"] == pytest.approx(r["after"] / r["before"]), r
    assert json.loads((tmp_path / "demo" / "result.json").read_text())["rows"] == out["rows"]
    assert (tmp_path / "demo" / "result.json").exists()
    assert (tmp_path / "demo" / "train" / "spent.json").exists()
    from frugalml.report import record

    rec = record.read(tmp_path / "demo")
    train = record.read(tmp_path / "demo" / "train")
    assert rec["kind"] == "demo" and rec["quality"]["accuracy"] == train["quality"]["accuracy"]
    assert rec["spent"]["cpu_s"] >= train["spent"]["cpu_s"]  # the whole demo, its foundation training included
    assert len(rec["points"]) == 2 * len(out["rows"])
    for r, before, after in zip(out["rows"], rec["points"][0::2], rec["points"][1::2], strict=True):
        assert before["label"] == f"{r['technique']}: {r['what']}, {r['metric']} (before)"
        assert after["label"] == f"{r['technique']}: {r['what']}, {r['metric']} (after)"
        if "accuracy" in r["metric"]:
            assert (before["quality"]["accuracy"]["value"], after["quality"]["accuracy"]["value"]) == (
                r["before"],
                r["after"],
            )
    video = [r for r in out["rows"] if r["technique"] == "video"]
    if video:  # the video step's sub-run has its own record, with per-clip costs to pay back
        gflops = next(p for p in rec["points"] if p["label"].startswith("video") and "GFLOPs" in p["label"])
        assert gflops["cost"]["macs"] == pytest.approx(video[0]["before"] * 1e9 / 2)
        assert record.read(tmp_path / "demo" / "video")["after"]["latency_s"] > 0
        pay = run(frugal_bin, "payback", str(tmp_path / "demo" / "video"), "--inferences-per-day", "1000")
        assert pay.returncode == 0, pay.stderr
    shown = run(frugal_bin, "show", str(tmp_path / "demo"), check=True)
    assert "demo" in shown.stdout and "accuracy" in shown.stdout
    assert p.stderr.strip().splitlines()[-1] == f"-> {tmp_path / 'demo'}"  # under --json, on stderr
    page = run(frugal_bin, "report", str(tmp_path / "demo"), "--html", str(tmp_path / "page.html"), check=True)
    assert page.stdout.strip().splitlines()[-1] == f"-> {tmp_path / 'page.html'}" and (tmp_path / "page.html").exists()
    plot = tmp_path / "cmp.png"
    cmp = run(frugal_bin, "compare", str(tmp_path / "demo"), "--plot", str(plot), check=True)
    assert cmp.stdout.strip().splitlines()[-1] == f"-> {plot}" and plot.stat().st_size > 0


MODEL_FILE = """
from torch import nn


def factory(hidden=5):
    return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))
"""


def test_profile_a_model_file_from_any_directory(frugal_bin, tmp_path):
    (tmp_path / "mymodel.py").write_text(MODEL_FILE)
    other = tmp_path / "elsewhere"
    other.mkdir()
    for cwd, spec in [
        (tmp_path, "./mymodel.py:factory"),
        (other, f"{tmp_path / 'mymodel.py'}:factory"),
        (tmp_path, "mymodel:factory"),  # module form: the current directory is on the import path
    ]:
        p = subprocess.run(
            [frugal_bin, "profile", "--model", spec, "--input", "3,4", "--json"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=cwd,
        )
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["macs"] == 3 * (4 * 5 + 5 * 2)


@pytest.mark.parametrize(
    "spec,message",
    [
        ("./nowhere.py:factory", "model file './nowhere.py' not found"),
        ("./mymodel.py:nofactory", "'nofactory' in module './mymodel.py' is not a callable model factory"),
        ("nosuchmodule_xyz:factory", "cannot import module 'nosuchmodule_xyz'"),
        ("./broken.py:factory", "cannot load model file './broken.py': SyntaxError"),
    ],
)
def test_bad_model_file_is_one_line_and_exit_2(frugal_bin, tmp_path, spec, message):
    (tmp_path / "mymodel.py").write_text(MODEL_FILE)
    (tmp_path / "broken.py").write_text("def factory(:\n")
    p = subprocess.run(
        [frugal_bin, "profile", "--model", spec, "--input", "1,4"], capture_output=True, text=True, cwd=tmp_path
    )
    assert p.returncode == 2
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], p.stderr


def test_estimate_from_params_and_tokens_matches_flops(frugal_bin):
    common = ["--hardware", "a100", "--region", "FRA", "--json"]
    e = json.loads(run(frugal_bin, "estimate", "--params", "7e9", "--tokens", "1e12", *common, check=True).stdout)
    f = json.loads(run(frugal_bin, "estimate", "--flops", "4.2e22", *common, check=True).stdout)
    assert e["flops"] == pytest.approx(4.2e22) and f["flops"] == pytest.approx(4.2e22)
    for key in ("device_hours", "wall_hours", "energy_kwh", "co2e_kg", "cost_usd"):
        assert e[key] == pytest.approx(f[key])
    assert e["assumptions"]["flops"]["value"] == pytest.approx(4.2e22)
    assert isinstance(e["assumptions"]["pue"]["value"], float)


def test_an_uncounted_op_is_a_warning_on_stderr_and_in_json(frugal_bin, tmp_path):
    (tmp_path / "tbc.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass TBC(nn.Module):\n"
        "    def forward(self, x):\n        return torch.conv_tbc(x, torch.ones(3, 3, 4), torch.ones(4))\n\n\n"
        "def factory():\n    return TBC()\n"
    )
    p = subprocess.run(
        [frugal_bin, "profile", "--model", "./tbc.py:factory", "--input", "5,2,3", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["uncounted_ops"] == ["aten.conv_tbc"]
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: not counted") and "aten.conv_tbc" in lines[0]


def _main(capsys, *args) -> tuple[int, str, str]:
    """`frugal ARGS` in process, through cli.main: (exit status, stdout, stderr); capsys or capfd."""
    from frugalml.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_one_pue_default_for_estimate_track_and_payback(capsys):
    import typer

    from frugalml.cli import app
    from frugalml.cost.carbon import DEFAULT_PUE

    commands = typer.main.get_command(app).commands
    defaults = {
        n: next(p.default for p in commands[n].params if p.name == "pue") for n in ("estimate", "track", "payback")
    }
    assert defaults == {"estimate": DEFAULT_PUE, "track": DEFAULT_PUE, "payback": DEFAULT_PUE} and DEFAULT_PUE == 1.58
    rc, out, _ = _main(capsys, "estimate", "--power-w", "1000", "--hours", "2", "--intensity", "100", "--json")
    e = json.loads(out)
    assert rc == 0 and e["energy_kwh"] == pytest.approx(2 * 1.58) and e["co2e_kg"] == pytest.approx(2 * 1.58 * 0.1)
    assert e["assumptions"]["pue"]["source"].startswith("default: Uptime Institute")


def test_track_intensity_and_run_directory_printed_for_show(capfd, tmp_path):
    out_dir = tmp_path / "tracked"
    cmd = ["--", sys.executable, "-c", "print(sum(range(10**6)))"]  # its output goes to stderr (real file descriptors)
    rc, out, err = _main(capfd, "track", "--intensity", "100", "--pue", "1.2", "--out", out_dir, "--json", *cmd)
    res = json.loads(out)
    assert rc == 0 and res["energy_kwh"] > 0
    assert res["co2e_g"] == pytest.approx(res["energy_kwh"] * 100)  # PUE is inside energy_kwh
    assert err.splitlines()[-1] == f"-> {out_dir}"  # under --json, on stderr
    assert "499999500000" in err
    rc, out, _ = _main(capfd, "show", out_dir, "--json")
    assert rc == 0 and json.loads(out)["kind"] == "track"


def test_models_lists_the_hugging_face_architectures(capsys):
    rc, out, _ = _main(capsys, "models", "--json")
    listed = json.loads(out)
    assert rc == 0 and {"mlp", "resnet18", "hf:bert", "hf:gpt2", "hf:PATH/config.json"} <= set(listed)
    assert listed["mlp"]["default_input"] == [1, 784] and listed["hf:bert"]["default_input"] is None
    rc, out, _ = _main(capsys, "models")
    assert "hf:gpt2" in out and "hf:PATH/config.json" in out
