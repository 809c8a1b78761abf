"""The command-line vocabulary (CONTRIBUTING.md, "Vocabulary"): one word, one meaning, in every command.

The commands are walked from the click tree typer builds for `frugal`, so a new command is
checked without being listed here. Old spellings stay usable as hidden aliases (one note on
stderr each); the table of them is `RENAMED` below, and every entry is driven end to end.
"""

from __future__ import annotations

import pytest
import typer

from frugalml import cli
from frugalml.errors import FrugalError
from frugalml.report.cliopts import parse_seeds


def _commands() -> dict:
    cli._add_groups()
    found = {}

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
        else:
            found[" ".join(path)] = cmd

    walk(typer.main.get_command(cli.app), ())
    return found


COMMANDS = _commands()


def _options(cmd, hidden=False):
    return [p for p in cmd.params if p.param_type_name == "option" and (hidden or not p.hidden)]


def _visible(cmd) -> dict[str, object]:
    """Every visible option name of `cmd` (with --no- forms) -> its parameter."""
    return {name: p for p in _options(cmd) for name in (*p.opts, *p.secondary_opts)}


def _renamed(cmd) -> dict[str, str]:
    normalize = (cmd.context_settings or {}).get("token_normalize_func")
    return getattr(normalize, "renamed", {})


# what each word's help must say (the vocabulary's meaning of it)
MEANS = {
    "--device": "torch device",
    "--target": "latency is measured or modelled",
    "--preset": "preset",
    "--accel": "accelerator spec",
    "--arch": "architecture",
    "--out": "director",
    "--run": "run directory",
    "--seed": "seed",
    "--seeds": "a list (0,1,2) or a range (0-2)",
    "--threads": "threads",
    "--data": "your own data",  # a data set by name, or the user's own (file, module:loader, clip folder)
}
GONE = ("--supernet", "--ticket", "--batch", "--first-seed", "--model-dir")

# every old spelling: (command, old, new)
RENAMED = {
    ("nas latency", "--supernet", "--run"),
    ("nas latency", "--device", "--target"),
    ("nas search", "--supernet", "--run"),
    ("nas search", "--device", "--target"),
    ("nas pareto", "--supernet", "--run"),
    ("nas pareto", "--device", "--target"),
    ("nas export", "--supernet", "--run"),
    ("tickets transfer", "--ticket", "--run"),
    ("tickets export", "--ticket", "--run"),
    ("pointcloud eval", "--model", "--run"),
    ("pointcloud scene", "--out", "--plot"),
    ("accel energy", "--arch", "--accel"),
    ("accel energy", "--batch", "--batch-size"),
    ("accel compare", "--arch", "--accel"),
    ("accel compare", "--batch", "--batch-size"),
    ("analog train", "--device", "--preset"),
    ("analog sweep", "--device", "--preset"),
    ("report", "--out", "--html"),
}


def test_the_walk_reaches_every_group():
    groups = {name.split()[0] for name in COMMANDS if " " in name}
    assert groups == {"tickets", "nas", "accel", "analog", "pointcloud", "video"}
    assert {"estimate", "report", "nas search", "tickets export", "pointcloud eval", "analog sweep"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help_and_shows_its_default(name):
    for p in _options(COMMANDS[name], hidden=True):
        assert p.help and p.help.strip(), f"{name} {p.opts[0]} has no help"
        assert p.show_default, f"{name} {p.opts[0]} hides its default"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_visible_word_means_what_the_vocabulary_says(name):
    visible = _visible(COMMANDS[name])
    assert not set(GONE) & set(visible), f"{name} shows an old spelling"
    for word, meaning in MEANS.items():
        if word in visible:
            assert meaning in visible[word].help.lower(), f"{name} {word}: {visible[word].help!r}"


def test_every_word_but_device_is_in_use_somewhere():
    # --device (a torch device) is not offered by any command today; its rule above applies once one does
    used = {word for cmd in COMMANDS.values() for word in _visible(cmd)}
    assert set(MEANS) - {"--device"} <= used


def test_seeds_is_a_list_everywhere(capsys):
    seeds = {name: _visible(cmd)["--seeds"] for name, cmd in COMMANDS.items() if "--seeds" in _visible(cmd)}
    assert set(seeds) == {"tickets find", "analog sweep"}
    for name, p in seeds.items():
        assert isinstance(p.default, str) and len(parse_seeds(p.default)) >= 1, name
    assert capsys.readouterr().err == ""  # the defaults are in the list form, not the deprecated count


def test_seeds_read_as_lists_and_ranges_and_a_bare_count_with_a_note(capsys):
    assert parse_seeds("0,1,2") == parse_seeds("0-2") == [0, 1, 2]
    assert parse_seeds("3-4, 7") == [3, 4, 7] and parse_seeds("5-5") == [5]
    assert capsys.readouterr().err == ""
    assert parse_seeds("3") == [0, 1, 2]
    assert capsys.readouterr().err == "note: --seeds 3 (a count) is deprecated; use --seeds 0-2\n"
    for bad, message in (
        ("2-1", "malformed"),
        ("a", "malformed"),
        ("0,0", "twice"),
        ("", "no seeds"),
        ("0", "no seeds"),
    ):
        with pytest.raises(FrugalError, match=message):
            parse_seeds(bad)


def test_the_table_of_old_spellings_is_complete_and_each_names_a_real_option():
    found = {(name, old, new) for name, cmd in COMMANDS.items() for old, new in _renamed(cmd).items()}
    assert found == RENAMED
    for name, old, new in found:
        visible = _visible(COMMANDS[name])
        assert new in visible and old not in visible, (name, old)


def _value(p) -> str:
    return {int: "3", float: "1.5"}.get(p.type_descriptor.annotation, "x")


@pytest.mark.parametrize(("name", "old", "new"), sorted(RENAMED))
def test_an_old_spelling_lands_in_the_new_option(name, old, new, capsys):
    cmd = COMMANDS[name]
    target = _visible(cmd)[new]
    args = [old, _value(target)]
    for p in cmd.params:  # the command's other required parameters, filled with anything
        if p.required and p is not target:
            args += [_value(p)] if p.param_type_name == "argument" else [p.opts[0], _value(p)]
    ctx = cmd.make_context(name, args)
    assert str(ctx.params[target.name]) == _value(target)
    assert capsys.readouterr().err == f"note: {old} is deprecated; use {new}\n"


def _main(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        cli.main(list(args))
    return e.value.code, capsys.readouterr().err


# one cheap command per old spelling, through `frugal`'s entry point: the note, then the command's
# own answer to the value given under the old name
DRIVEN = [
    (["nas", "latency", "--supernet", "NOPE"], "NOPE is not a supernet run directory"),
    (["nas", "search", "--supernet", "NOPE", "--latency-ms", "1"], "NOPE is not a supernet run directory"),
    (["nas", "pareto", "--supernet", "NOPE"], "NOPE is not a supernet run directory"),
    (["nas", "export", "--supernet", "NOPE", "--arch", "a.json", "--out", "x"], "NOPE is not a supernet run"),
    (["nas", "latency", "--run", "NOPE", "--device", "quantum-9"], "unknown latency target 'quantum-9'"),
    (["nas", "search", "--run", "NOPE", "--device", "quantum-9", "--latency-ms", "1"], "unknown latency target"),
    (["nas", "pareto", "--run", "NOPE", "--device", "quantum-9"], "unknown latency target 'quantum-9'"),
    (["tickets", "transfer", "--ticket", "NOPE", "--data", "digits"], "ticket directory not found: NOPE"),
    (["tickets", "export", "--ticket", "NOPE"], "ticket directory not found: NOPE"),
    (["pointcloud", "eval", "--model", "NOPE"], "NOPE is not a point-cloud model directory"),
    (["accel", "energy", "--arch", "nope"], "unknown arch 'nope'"),
    (["accel", "compare", "--arch", "nope"], "unknown arch 'nope'"),
    (["accel", "energy", "--batch", "0"], "--batch-size must be positive, got 0"),
    (["accel", "compare", "--batch", "0"], "--batch-size must be positive, got 0"),
    (["analog", "train", "--device", "flash"], "unknown device preset 'flash'"),
    (["analog", "sweep", "--param", "states", "--device", "flash", "--epochs", "0"], "unknown device preset 'flash'"),
    (["report", "NOPE", "--out", "page.html"], "NOPE is not a directory"),
]


def _driven(args: list[str]) -> tuple[str, str]:
    """(command, the old spelling) a DRIVEN case drives."""
    name = args[0] if args[0] == "report" else " ".join(args[:2])
    renamed = {old for cmd, old, _ in RENAMED if cmd == name}
    (old,) = [a for a in args if a in renamed]
    return name, old


def test_every_old_spelling_is_driven():
    driven = {_driven(args) for args, _ in DRIVEN} | {("pointcloud scene", "--out")}  # a real PNG below
    assert driven == {(cmd, old) for cmd, old, _ in RENAMED}


@pytest.mark.parametrize(("args", "answer"), DRIVEN, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_each_old_spelling_still_works_and_prints_one_note(args, answer, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # NOPE and the outputs are relative: nothing lands outside tmp_path
    code, err = _main(capsys, *args)
    name, old = _driven(args)
    new = next(n for cmd, o, n in RENAMED if (cmd, o) == (name, old))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 2 and lines[0] == f"note: {old} is deprecated; use {new}", err
    assert lines[1].startswith("frugal: error:") and answer in lines[1], err


def test_pointcloud_scene_writes_its_png_under_the_old_out(tmp_path, capsys):
    png = tmp_path / "s.png"
    with pytest.raises(SystemExit) as e:
        cli.main(["pointcloud", "scene", "--beams", "4", "--azimuths", "30", "--out", str(png), "--json"])
    captured = capsys.readouterr()
    assert e.value.code == 0, captured.err
    assert captured.err == f"note: --out is deprecated; use --plot\n-> {png}\n"  # where it saved: stderr (--json)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(png) in captured.out


def test_tickets_first_seed_keeps_its_meaning(capsys):
    from frugalml.tickets.cli import _seeded
    from frugalml.tickets.config import TicketConfig

    cfg = _seeded(TicketConfig(), "3", 5)
    assert cfg.seed_list() == [5, 6, 7]
    assert capsys.readouterr().err == "note: --first-seed is deprecated; use --seeds 5-7\n"
    assert _seeded(TicketConfig(), "0,1", 4).seed_list() == [4, 5]  # the default count, 2
    assert _seeded(TicketConfig(), "3-5", None).seed_list() == [3, 4, 5]
    with pytest.raises(FrugalError, match="consecutive"):
        _seeded(TicketConfig(), "0,2", None)
