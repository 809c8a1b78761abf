"""Dataclass configs as typer command options, and back from their JSON records.

`config_options(Config)` turns the fields of a config dataclass into `--field-name` options
of a typer command (help text from `field(metadata={"help": ..., "unit": ...})`, defaults
from `Config()`), builds the config from them and hands it to the command as one
argument. A field that is itself a dataclass (a `TrainConfig` embedded in a technique's
config) contributes its own fields, addressed as "train.epochs" in `only`, `skip`, `flags`
and `helps`. List and tuple fields are read as comma-separated text ("none" for empty).

The command-line vocabulary lives here too (CONTRIBUTING.md, "Vocabulary"): `renamed(...)`
keeps an option's old spelling working, hidden from `--help`, with one note on stderr;
`parse_seeds` reads `--seeds` as a list (0,1,2) or a range (0-2).

It sits in `report` because it only shapes what a user types and sees; it imports no
technique, so every technique's `cli.py` can use it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from frugalml.errors import FrugalError


def deprecated(old: str, new: str) -> None:
    """The one line a deprecated spelling prints on stderr."""
    print(f"note: {old} is deprecated; use {new}", file=sys.stderr)


def renamed(old_to_new: dict[str, str]) -> dict:
    """`context_settings` for a typer command: each old option spelling ("--supernet") still
    works as its new one ("--run"), stays out of `--help`, and prints one note on stderr.

    It is click's token normaliser, so the parser sees only the new names; the table is kept
    on the function as `.renamed` (tests check every old name maps to a real option)."""
    table = {old.lstrip("-"): (old, new) for old, new in old_to_new.items()}

    def normalize(token: str) -> str:
        hit = table.get(token)
        if hit is None:
            return token
        deprecated(*hit)
        return hit[1].lstrip("-")

    normalize.renamed = dict(old_to_new)
    return {"token_normalize_func": normalize}


SEEDS_FORM = "a list (0,1,2) or a range (0-2); a bare count N (deprecated) means 0-(N-1)"


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """`--seeds`: "0,1,2", "0-2" or "0-2,7" as a list of distinct seeds. A bare integer N keeps
    its old meaning, the N seeds 0..N-1, and prints a note suggesting the list form."""
    text = str(text).strip()
    if text.isdigit():
        n = int(text)
        if n < 1:
            raise FrugalError(f"{flag} {text}: no seeds (a single seed S is written S-S)")
        deprecated(f"{flag} {n} (a count)", f"{flag} {'0-0' if n == 1 else f'0-{n - 1}'}")
        return list(range(n))
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()) or (dash and int(hi) < int(lo)):
            raise FrugalError(f"malformed {flag} '{text}': expected seeds like 0,1,2 or a range 0-2")
        seeds += range(int(lo), int(hi if dash else lo) + 1)
    if not seeds:
        raise FrugalError(f"{flag} '{text}' names no seeds")
    if len(set(seeds)) != len(seeds):
        raise FrugalError(f"{flag} '{text}' names a seed twice")
    return seeds


def seeds_option(default: str, what: str = "Seeds"):
    """The `--seeds` option of a sweep, its help saying `what` they seed (read it with `parse_seeds`)."""
    import typer

    return typer.Option(default, "--seeds", help=f"{what}: {SEEDS_FORM}.")


EXECUTOR_HELP = (
    "Where the independent jobs run: serial, processes[:N] (local processes, all cores without N), "
    "ray (a Ray started here), ray:auto (this machine's Ray cluster), ray://HOST:PORT or ray:HOST:PORT "
    "(a Ray cluster's client or GCS address)."
)


def executor_option():
    """The `--executor` option of every command that runs independent jobs (FRUGAL_EXECUTOR sets
    its default); read it with `pick_executor`."""
    import typer

    from frugalml.executor import ENV

    return typer.Option("serial", "--executor", envvar=ENV, help=EXECUTOR_HELP)


def workers_option():
    """`--workers N`, the shorthand for `--executor processes:N` (read with `pick_executor`)."""
    import typer

    return typer.Option(1, "--workers", help="Local worker processes: --executor processes:N in short.")


def pick_executor(executor: str, workers: int = 1, join: bool = True):
    """The `frugalml.executor.Executor` of `--executor` and `--workers` (a count other than 1 wins
    over the default and FRUGAL_EXECUTOR; both on the command line is refused). With `join`, a Ray
    executor is connected to now, so an unreachable cluster is refused before anything is written."""
    from frugalml.executor import connect, parse_executor

    ex = _pick(executor, workers, parse_executor)
    if join and ex.kind == "ray":
        connect(ex)
    return ex


def _pick(executor: str, workers: int, parse_executor):
    if workers == 1:
        return parse_executor(executor)
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - older typer, click itself
        from click import get_current_context
    ctx = get_current_context(silent=True)
    source = None if ctx is None else ctx.get_parameter_source("executor")
    if source is not None and source.name == "COMMANDLINE":
        raise FrugalError(
            f"give --executor or --workers, not both (--workers {workers} is --executor processes:{workers})"
        )
    return parse_executor(workers)


@dataclasses.dataclass
class _Spec:
    path: str  # "levels" or "train.epochs"
    name: str  # the command parameter
    flag: str  # "--levels"
    annotation: Any
    default: Any
    help: str | None
    parse: Callable[[Any], Any] | None


def _plain(tp) -> tuple[Any, bool]:
    """(type without None, whether None was allowed)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), True
    return tp, False


def _sequence_parser(flag: str, kind, item) -> Callable[[str], Any]:
    def parse(text: str):
        text = str(text).strip()
        if text.lower() in ("", "none"):
            return kind()
        try:
            return kind(item(v.strip()) for v in text.split(",") if v.strip())
        except ValueError:
            raise FrugalError(f"malformed {flag} '{text}': expected comma-separated {item.__name__} values") from None

    return parse


def _help(f: dataclasses.Field, helps: dict, path: str) -> str | None:
    text = helps.get(path, f.metadata.get("help"))
    unit = f.metadata.get("unit")
    return f"{text} ({unit})" if text and unit else text


def _specs(cls, base, prefix: str, only, skip, flags: dict, helps: dict) -> list[_Spec]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        path, value = prefix + f.name, getattr(base, f.name)
        if dataclasses.is_dataclass(value):
            out += _specs(type(value), value, path + ".", only, skip, flags, helps)
            continue
        if path in skip or (only is not None and path not in only) or f.metadata.get("cli") is False:
            continue
        flag = "--" + flags.get(path, f.name).replace("_", "-")
        tp, _ = _plain(hints[f.name])
        parse = f.metadata.get("parse")
        origin = typing.get_origin(tp)
        if parse is None and origin in (list, tuple):
            parse = _sequence_parser(flag, origin, typing.get_args(tp)[0])
        if parse is not None:
            tp, value = str, None if value is None else ",".join(map(str, value)) if origin else value
        out.append(_Spec(path, flag[2:].replace("-", "_"), flag, tp, value, _help(f, helps, path), parse))
    return out


def _decl(s: _Spec) -> str:
    """The option's declaration: booleans get a --no- form, as typer gives them by default."""
    return f"{s.flag}/--no-{s.flag[2:]}" if s.annotation is bool else s.flag


def build(base, values: dict[str, Any]):
    """`base` with the dotted-path `values` replaced (nested dataclasses rebuilt, not mutated)."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, v in values.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = v
        else:
            top[head] = v
    for head, sub in nested.items():
        top[head] = build(getattr(base, head), sub)
    return dataclasses.replace(base, **top)


def config_options(
    cls,
    param: str = "cfg",
    *,
    only: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    flags: dict[str, str] | None = None,
    helps: dict[str, str] | None = None,
    quick: dict[str, Any] | None = None,
    quick_also: str = "",
):
    """Decorator: the command's `param` argument becomes one option per config field.

    `only`/`skip` pick fields by dotted path, `flags` renames an option (path -> name
    without dashes), `helps` replaces a field's help text for this command.

    `quick` adds a `--quick` flag, a smoke-sized run: its values (by dotted config path, or by
    the name of one of the command's own parameters) replace the defaults of the options the
    user did not give on the command line; an option given explicitly always wins. A command
    with a `quick` parameter of its own receives the flag's value too (`quick_also` then says,
    in the flag's help, what else it does with it).
    """
    import typer

    only = None if only is None else set(only)
    specs = _specs(cls, cls(), "", only, set(skip), flags or {}, helps or {})
    quick = dict(quick or {})

    def decorate(fn):
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != param]
        taken = {p.name for p in own}
        clash = [s.flag for s in specs if s.name in taken]
        if clash:
            raise TypeError(f"{fn.__name__}: config options {clash} clash with the command's own parameters")
        by_path = {s.path: s for s in specs}
        unknown = [k for k in quick if k not in by_path and k not in taken]
        if unknown:
            raise TypeError(f"{fn.__name__}: quick values for {unknown}, which are not options of the command")
        own_quick = "quick" in taken

        @functools.wraps(fn)
        def command(**kwargs):
            if quick and kwargs["quick"]:
                _apply_quick(kwargs, quick, by_path)
            if quick and not own_quick:
                kwargs.pop("quick")
            values = {}
            for s in specs:
                v = kwargs.pop(s.name)
                values[s.path] = s.parse(v) if s.parse is not None and v is not None else v
            return fn(**kwargs, **{param: build(cls(), values)})

        params = [
            inspect.Parameter(
                s.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(s.default, _decl(s), help=s.help),
                annotation=s.annotation,
            )
            for s in specs
        ]
        params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if not (quick and p.name == "quick")]
        if quick:
            params.append(_quick_param(quick, by_path, quick_also))
        command.__signature__ = sig.replace(parameters=params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


def _cli_text(value) -> Any:
    """A quick value as the option would read it from the command line (lists comma-separated)."""
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def quick_help(quick: dict[str, Any], by_path: dict[str, _Spec] | None = None, also: str = "") -> str:
    """The help line of `--quick`: the options it sets and their values."""
    by_path = by_path or {}
    parts = [
        f"{by_path[k].flag if k in by_path else '--' + k.replace('_', '-')} {_cli_text(v)}" for k, v in quick.items()
    ]
    parts += [also] if also else []
    return f"A smoke-sized run of the whole path: {', '.join(parts)} (options you give still win)."


def _quick_param(quick: dict[str, Any], by_path: dict[str, _Spec], also: str) -> inspect.Parameter:
    import typer

    return inspect.Parameter(
        "quick",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(False, "--quick", help=quick_help(quick, by_path, also)),
        annotation=bool,
    )


def given_on_command_line(name: str) -> bool:
    """Whether the current command's parameter `name` came from the command line (or the
    environment), not from its default. Outside a click context (a direct call), False."""
    try:  # typer >= 0.25 carries its own copy of click
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - older typer, click itself
        from click import get_current_context

    ctx = get_current_context(silent=True)
    source = None if ctx is None else ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _apply_quick(kwargs: dict[str, Any], quick: dict[str, Any], by_path: dict[str, _Spec]) -> None:
    """`--quick`: its values replace those of the options the user did not give."""
    for key, value in quick.items():
        name = by_path[key].name if key in by_path else key
        if not given_on_command_line(name):
            kwargs[name] = _cli_text(value) if key in by_path and by_path[key].parse is not None else value


def config_from_dict(cls, data: dict, where: str = "config"):
    """Rebuild a (possibly nested) config dataclass from its `asdict` record; a record of
    another shape (an older version's, or another kind of run's) is a FrugalError."""
    if not isinstance(data, dict):
        raise FrugalError(f"{where} is not a {cls.__name__} record")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise FrugalError(
            f"{where} is not a {cls.__name__} of this version (unknown fields {', '.join(unknown)}): "
            "it comes from an older version or another kind of run; start a new --out"
        )
    kw = {}
    for name, value in data.items():
        tp, _ = _plain(hints[name])
        kw[name] = config_from_dict(tp, value, where) if dataclasses.is_dataclass(tp) and value is not None else value
    try:
        return cls(**kw)
    except TypeError as e:
        raise FrugalError(f"{where} is not a {cls.__name__} record: {e}") from None
