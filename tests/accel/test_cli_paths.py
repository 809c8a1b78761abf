"""`frugal accel energy/compare` end with `-> PATH` (the run directory, else the plot; on stderr under
--json), and write nothing and print no path when asked for neither (issue 18)."""

import json

from clirun import frugal

TINY = ["--model", "mlp", "--accel", "eyeriss-v1"]


def test_energy_ends_with_its_run_directory(tmp_path, capsys):
    out, _ = frugal(capsys, "accel", "energy", *TINY, "--out", tmp_path / "run")
    assert out.strip().splitlines()[-1] == f"-> {tmp_path / 'run'}"
    assert json.loads((tmp_path / "run" / "record.json").read_text())["kind"] == "accel.energy"


def test_compare_with_a_plot_only_ends_with_the_plot_and_json_keeps_stdout_clean(tmp_path, capsys):
    png = tmp_path / "c.png"
    out, err = frugal(capsys, "accel", "compare", *TINY, "--plot", png, "--json")
    assert json.loads(out)["plot"] == str(png) and png.is_file()
    assert err.strip().splitlines()[-1] == f"-> {png}"


def test_nothing_written_nothing_printed_as_saved(capsys):
    out, err = frugal(capsys, "accel", "energy", *TINY)
    assert "-> " not in out and "-> " not in err
