"""`config_options(..., quick={...})`: a `--quick` flag whose values apply only to the options
the user did not give."""

from dataclasses import dataclass, field

import pytest
import typer
from typer.testing import CliRunner

from frugalml.report.cliopts import config_options
from frugalml.trainconfig import TrainConfig


@dataclass
class Toy:
    levels: int = field(default=12, metadata={"help": "Levels."})
    widths: list[int] = field(default_factory=lambda: [32, 64], metadata={"help": "Widths."})
    train: TrainConfig = field(default_factory=TrainConfig)


def _app(**kw):
    app = typer.Typer()
    seen = {}

    @app.command()
    @config_options(Toy, only=("levels", "widths", "train.epochs"), quick={"levels": 1, "train.epochs": 2, **kw})
    def go(cfg: Toy, seeds: str = typer.Option("0,1", help="Seeds."), quick: bool = False):
        seen.update(cfg=cfg, seeds=seeds, quick=quick)

    @app.command()
    def other():  # a second command, so `go` is addressed by name
        pass

    return app, seen


def got(seen):
    return seen["cfg"].levels, seen["cfg"].train.epochs, seen["cfg"].widths, seen["seeds"]


def run(app, *args):
    r = CliRunner().invoke(app, ["go", *args])
    assert r.exit_code == 0, r.output
    return r


def test_quick_replaces_defaults_only():
    app, seen = _app(seeds="0", widths=[4])
    run(app)
    assert got(seen) == (
        12,
        10,
        [32, 64],
        "0,1",
    )
    assert seen["quick"] is False
    run(app, "--quick")
    assert got(seen) == (1, 2, [4], "0")
    assert seen["quick"] is True
    # what the user gives wins, even when it equals the normal default
    run(app, "--quick", "--levels", "12", "--seeds", "3", "--widths", "8,8")
    assert got(seen) == (12, 2, [8, 8], "3")


def test_quick_help_names_its_values():
    app, _ = _app()
    (quick,) = [p for p in typer.main.get_command(app).commands["go"].params if p.name == "quick"]
    assert quick.opts == ["--quick"] and quick.default is False
    assert "--levels 1, --epochs 2" in quick.help and "options you give still win" in quick.help


def test_quick_for_an_unknown_option_is_a_programming_error():
    with pytest.raises(TypeError, match="nonesuch"):
        _app(nonesuch=1)
