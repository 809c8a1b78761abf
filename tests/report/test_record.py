"""The run record, `frugal show/compare/payback` on hand-made records with hand-computed answers."""

import json
import subprocess

import pytest

from frugalml.errors import FrugalError
from frugalml.report import compare as cmp
from frugalml.report import record


def make(tmp_path, name, kind, acc, spent_co2e, after, before=None, data="digits", metric="accuracy"):
    rec = record.build(
        kind,
        quality={metric: record.metric(acc)},
        config={"name": name},
        data=data,
        model="mlp",
        before=before,
        after=after,
        spent={"co2e_g": spent_co2e, "cpu_s": spent_co2e * 10},
        command="test",
    )
    record.write(tmp_path / name, rec)
    return tmp_path / name


def frugal(frugal_bin, *args):
    return subprocess.run([frugal_bin, *args], capture_output=True, text=True, timeout=120)


def test_metric_mean_and_sample_spread_by_hand():
    m = record.metric([0.90, 0.94], seeds=[0, 1])
    assert m["value"] == pytest.approx(0.92)
    assert m["std"] == pytest.approx(0.0282842712, rel=1e-6)  # sqrt(((0.02)^2 * 2) / 1)
    assert m["seeds"] == [0, 1]


def test_tickets_sweep_pareto_marked_by_hand(tmp_path, frugal_bin):
    sweep = tmp_path / "sweep"
    # dense, then three levels: (accuracy, spent CO2e g, MACs per inference)
    for name, acc, spent, macs in [
        ("dense", 0.95, 1.0, 100),
        ("level1", 0.96, 2.0, 50),
        ("level2", 0.955, 3.0, 25),
        ("level3", 0.90, 4.0, 12),
    ]:
        make(sweep, name, "tickets.find", acc, spent, after={"macs": macs})
    p = frugal(frugal_bin, "compare", str(sweep), "--json", "--plot", str(tmp_path / "cmp.png"))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    runs = {r["run"].rsplit("/", 1)[-1]: r for r in out["runs"]}
    # spent front: dense (cheapest) and level1 (best); level2 is beaten by level1, level3 by dense
    assert {n for n, r in runs.items() if r["pareto_spent"]} == {"dense", "level1"}
    assert runs["level2"]["dominated_by_spent"].endswith("level1")
    assert runs["level3"]["dominated_by_spent"].endswith("dense")
    # inference front on MACs: dense is beaten by level1 (better and half the MACs)
    assert {n for n, r in runs.items() if r["pareto_inference"]} == {"level1", "level2", "level3"}
    assert out["spent_key"] == "co2e_g" and out["inference_key"] == "macs"
    assert runs["level1"]["vs_cheapest"]["gain"] == pytest.approx(1.0)  # +1 point
    assert runs["level1"]["vs_cheapest"]["spent_ratio"] == pytest.approx(2.0)
    assert runs["level1"]["verdict"] == "+1 pt for 2x the CO2e"
    assert (tmp_path / "cmp.png").stat().st_size > 1000
    table = frugal(frugal_bin, "compare", str(sweep))
    assert "runs compared" in table.stdout and "+1 pt for 2x the CO2e" in table.stdout


def test_two_video_runs_pareto(tmp_path):
    uni = make(tmp_path, "uniform", "video.train", 0.97, 5.0, after={"co2e_g": 2e-4, "macs": 1000})
    ada = make(tmp_path, "adaptive", "video.train", 0.965, 9.0, after={"co2e_g": 6e-5, "macs": 300})
    out = cmp.compare([record.read(uni), record.read(ada)])
    by = {r["run"].rsplit("/", 1)[-1]: r for r in out["runs"]}
    assert out["inference_key"] == "co2e_g"
    assert by["uniform"]["pareto_spent"] and not by["adaptive"]["pareto_spent"]  # better and cheaper to make
    assert by["uniform"]["pareto_inference"] and by["adaptive"]["pareto_inference"]  # a real trade-off


def test_payback_hand_computed(tmp_path, frugal_bin):
    run = make(tmp_path, "ticket", "tickets.find", 0.95, 100.0, before={"energy_j": 2.0}, after={"energy_j": 0.5})
    p = frugal(frugal_bin, "payback", str(run), "--inferences-per-day", "1000", "--days", "1000", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    # J saved x the default PUE 1.58 (shared with estimate and track) x world grid g/kWh / (J per kWh)
    per_inference_saving = 1.5 * 1.58 * 475 / 3.6e6
    assert out["break_even_inferences"] == pytest.approx(100 / per_inference_saving)  # 319,787
    assert out["break_even_days"] == pytest.approx(100 / per_inference_saving / 1000)
    assert out["saved_co2e_g"] == pytest.approx(per_inference_saving * 1000 * 1000 - 100)
    assert out["assumptions"]["intensity_g_per_kwh"]["value"] == 475
    text = frugal(frugal_bin, "payback", str(run), "--inferences-per-day", "1000")
    assert "pays back after" in text.stdout and "319" in text.stdout
    at_desk = json.loads(
        frugal(frugal_bin, "payback", str(run), "--inferences-per-day", "1000", "--pue", "1.0", "--json").stdout
    )
    assert at_desk["break_even_inferences"] == pytest.approx(100 / (1.5 * 475 / 3.6e6))  # 505,263


def test_payback_on_a_hardware_profile_from_macs(tmp_path):
    from frugalml.cost import hardware

    run = make(tmp_path, "t", "tickets.find", 0.9, 1.0, before={"macs": 4_000_000}, after={"macs": 1_000_000})
    out = cmp.payback(record.read(run), 1e6, hardware_name="v100", region="FRA")
    hw = hardware.get("v100")
    fra = out["assumptions"]["intensity_g_per_kwh"]["value"]
    saving = 2 * 3_000_000 / (hw.sustained_tflops * 1e12) * hw.tdp_w * fra / 3.6e6
    assert out["break_even_inferences"] == pytest.approx(1.0 / saving)


def test_a_costlier_result_never_pays_back(tmp_path):
    run = make(tmp_path, "worse", "nas.search", 0.9, 10.0, before={"energy_j": 1.0}, after={"energy_j": 1.2})
    out = cmp.payback(record.read(run), 1000)
    assert out["pays_back"] is False and out["break_even_inferences"] is None and out["break_even_days"] is None
    assert out["saved_co2e_g"] < 0


def test_show_prints_the_record(tmp_path, frugal_bin):
    run = make(tmp_path, "r", "tickets.find", 0.93, 2.5, before={"macs": 100, "params": 10}, after={"macs": 20})
    p = frugal(frugal_bin, "show", str(run))
    assert p.returncode == 0, p.stderr
    assert "tickets.find" in p.stdout and "0.93" in p.stdout and "0.2x" in p.stdout
    j = json.loads(frugal(frugal_bin, "show", str(run), "--json").stdout)
    assert j["quality"]["accuracy"]["value"] == 0.93 and j["spent"]["co2e_g"] == 2.5


def test_bad_input_one_line_exit_2(tmp_path, frugal_bin):
    empty = tmp_path / "empty"
    empty.mkdir()
    p = frugal(frugal_bin, "show", str(empty))
    assert p.returncode == 2 and "holds no run" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    newer = make(tmp_path, "newer", "tickets.find", 0.9, 1.0, after={"macs": 1})
    rec = json.loads((newer / "record.json").read_text()) | {"schema_version": 99}
    (newer / "record.json").write_text(json.dumps(rec))
    p = frugal(frugal_bin, "show", str(newer))
    assert p.returncode == 2 and "newer than this frugalml" in p.stderr
    a = make(tmp_path, "acc", "tickets.find", 0.9, 1.0, after={"macs": 1})
    b = make(tmp_path, "miou", "pointcloud.train", 0.6, 1.0, after={"macs": 1}, metric="miou")
    p = frugal(frugal_bin, "compare", str(a), str(b))
    assert p.returncode == 2 and "measure different things" in p.stderr
    c = make(tmp_path, "other-data", "tickets.find", 0.9, 1.0, after={"macs": 1}, data="mnist1d")
    p = frugal(frugal_bin, "compare", str(a), str(c))
    assert p.returncode == 0 and "different data" in p.stderr


def test_schema_rejects_a_malformed_record(tmp_path):
    rec = record.build("x", quality={"accuracy": {"value": "high"}}, after=None, command="t")
    with pytest.raises(FrugalError, match="quality/accuracy/value"):
        record.write(tmp_path, rec)


def chromium_render(page, screenshot):
    """The DOM of `page` as headless Chromium renders it, and a screenshot of it."""
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
    shot = subprocess.run(
        [*flags, f"--screenshot={screenshot}", "--window-size=1200,1400", page.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert screenshot.exists(), shot.stderr.decode()[-2000:]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout


def table_cells(dom: str):
    """The text of every table row of a rendered page, row by row."""
    import html.parser

    class Cells(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows = []

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])

        def handle_data(self, data):
            if self.rows and data.strip() and self.lasttag in ("td", "th"):
                self.rows[-1].append(data.strip())

    cells = Cells()
    cells.feed(dom)
    return cells


def test_tickets_report_page_in_a_real_browser(tmp_path, frugal_bin):
    levels = [("dense", 0.961, 266_200), ("level 1 (80.0%)", 0.958, 213_000), ("level 2 (64.0%)", 0.949, 170_400)]
    rec = record.build(
        "tickets.find",
        quality={"accuracy": record.metric([0.949, 0.951], seeds=[0, 1])},
        data="digits",
        model="lenet",
        before={"macs": 266_200, "params": 266_610},
        after={"macs": 170_400, "params": 170_624},
        spent={"cpu_s": 12.5, "co2e_g": 0.04},
        points=[{"label": lbl, "quality": {"accuracy": record.metric(a)}, "cost": {"macs": m}} for lbl, a, m in levels],
        command="test",
    )
    run = tmp_path / "ticket-run"
    record.write(run, rec)
    p = frugal(frugal_bin, "report", str(run))
    assert p.returncode == 0, p.stderr
    dom = chromium_render(run / "summary.html", run / "summary.png")

    cells = table_cells(dom)
    rows = {r[0]: r[1:] for r in cells.rows if r}
    # every level's accuracy and MACs as rendered (the MACs column formatted by Cost's own formatter)
    assert rows["dense"] == ["0.961", "266,200"]
    assert rows["level 1 (80.0%)"] == ["0.958", "213,000"]
    assert rows["level 2 (64.0%)"] == ["0.949", "170,400"]
    assert ["accuracy", "0.95", "0.001414", "0, 1"] in cells.rows  # mean and std of the two seeds
    assert rows["MACs (dense, fwd)"] == ["266 k", "170 k", "0.6401"]
    assert (run / "summary.png").stat().st_size > 10_000


def test_files_keep_the_users_umask(tmp_path):
    import os
    import stat

    from frugalml.files import write_json

    old = os.umask(0o022)
    try:
        mode = stat.S_IMODE(write_json(tmp_path / "a.json", {"x": 1}).stat().st_mode)
        os.umask(0o077)
        private = stat.S_IMODE(write_json(tmp_path / "b.json", {"x": 1}).stat().st_mode)
    finally:
        os.umask(old)
    assert mode == 0o644 and private == 0o600


def test_report_of_a_real_tickets_run_shows_every_level_in_a_browser(tmp_path, frugal_bin):
    run = tmp_path / "find"
    args = [
        "tickets",
        "find",
        "--data",
        "digits",
        "--levels",
        "2",
        "--seeds",
        "0-0",
        "--epochs",
        "1",
        "--out",
        str(run),
    ]
    p = frugal(frugal_bin, *args)
    assert p.returncode == 0, p.stderr
    assert frugal(frugal_bin, "report", str(run)).returncode == 0
    rec = record.read(run)
    cells = table_cells(chromium_render(run / "summary.html", run / "summary.png"))
    header = next(r for r in cells.rows if r and r[0] == "accuracy" and "MACs (nonzero weights)" in r)
    rows = {r[0]: dict(zip(header, r[1:])) for r in cells.rows if r}
    assert len(rec["points"]) == 3  # dense + 2 levels
    for point in rec["points"]:
        shown = rows[point["label"]]
        assert float(shown["accuracy"]) == pytest.approx(point["quality"]["accuracy"]["value"], abs=5e-4)
        assert int(shown["MACs (nonzero weights)"].replace(",", "")) == point["cost"]["macs_effective"]
    assert (run / "summary.png").stat().st_size > 10_000


def test_spent_energy_parts_and_prediction_validate_and_show(tmp_path, frugal_bin):
    parts = {
        "cpu": {"energy_j": 1200.0, "method": "load model"},
        "ram": {"energy_j": 2800.0, "method": "fixed power"},
        "gpu": {"energy_j": 0.0, "method": "none"},
    }
    pred = {"epochs": 3, "first_epoch_energy_j": 1000.0, "energy_j": 3000.0, "co2e_g": 0.05}
    spent = {
        "energy_j": 4000.0,
        "energy_parts": parts,
        "prediction": pred | {"actual_energy_j": 4000.0, "ratio": 4 / 3},
    }
    rec = record.build("train", quality={}, spent=spent, command="t")
    assert rec["spent"]["energy_parts"] == parts  # build keeps them
    record.write(tmp_path / "new", rec)
    p = frugal(frugal_bin, "show", str(tmp_path / "new"))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    energy = next(i for i, line in enumerate(lines) if " energy " in line)
    assert "4 kJ" in lines[energy] and "CPU (load model)" in lines[energy + 1] and "1.2 kJ" in lines[energy + 1]
    assert "RAM (fixed power)" in lines[energy + 2] and "2.8 kJ" in lines[energy + 2]
    assert "3 kJ, actual/predicted 1.33" in p.stdout
    # a record from before the split is still valid; a method outside the four is not
    record.write(tmp_path / "old", record.build("train", quality={}, spent={"energy_j": 4000.0}, command="t"))
    bad = record.build("train", quality={}, spent={"energy_parts": {"cpu": {"energy_j": 1.0, "method": "guess"}}})
    with pytest.raises(FrugalError, match="spent/energy_parts/cpu/method"):
        record.write(tmp_path / "bad", bad)
