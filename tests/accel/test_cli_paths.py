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


def test_energy_takes_given_input_zeros_per_layer(capsys):
    # mlp: three Linear layers; all-zero activations compress to nothing: no input traffic, and of the
    # outputs only partial sums spilled and read back (never compressed) may be left
    out, _ = frugal(capsys, "accel", "energy", *TINY, "--input-zeros", "1,1,1", "--json")
    measured, _ = frugal(capsys, "accel", "energy", *TINY, "--json")
    res, measured = json.loads(out), json.loads(measured)
    assert res["activation_zeros"].startswith("given per layer")
    assert measured["activation_zeros"].startswith("measured")
    for layer, before in zip(res["layers"], measured["layers"], strict=True):
        dram, dram0 = layer["accesses"]["dram"], before["accesses"]["dram"]
        assert dram["inputs"] == 0 < dram0["inputs"]
        assert dram["weights"] == dram0["weights"] > 0  # the same mapping: the mapper does not see compression
        assert dram["outputs"] < dram0["outputs"]


def test_energy_refuses_input_zeros_of_the_wrong_count(capsys):
    import pytest

    from frugalml.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["accel", "energy", *TINY, "--input-zeros", "0.5,0.5"])
    assert exc.value.code != 0
    assert "2 fractions for 3 layers" in capsys.readouterr().err
