"""Shared CLI plumbing: one-line errors on stderr, JSON output, consoles.

Every command wraps its body in :func:`errors_to_exit` so a :class:`HeadroomError`
becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

# typer vendors click (``typer._click``) and raises its exception types, not click's.
from typer._click import exceptions as click_errors
from typer.core import TyperGroup

from headroom.policies.errors import REQUIRED, HeadroomError, InputError, one_line
from headroom.policies.quantities import parse_duration

console = Console()
err_console = Console(stderr=True)

EXIT_INPUT = 2  # bad input: nothing was applied
EXIT_FAILED = 1  # the operation itself failed


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"error: {one_line(first_line)}", file=sys.stderr)
    raise typer.Exit(code)


# click names the environment variable an option also reads: "... '--x' (env var: 'X'): ..."
_BAD_VALUE = re.compile(
    r"^Invalid value for '?(?P<opt>[^':]+?)'?(?: \(env var: '[^']*'\))?: (?P<msg>.*)$", re.S
)
_CLICK_TYPES = {"a valid integer": "a whole number", "a valid number": "a number"}


def usage_error_line(err: click_errors.ClickException) -> str:
    """A click/typer usage error (bad option value, unknown option, missing argument) in
    the one-line wording of every other input error: ``--current-units: must be ...``."""
    if isinstance(err, click_errors.NoSuchOption):
        return f"{one_line(err.option_name)}: is not a known option"
    if isinstance(err, click_errors.MissingParameter) and err.param is not None:
        name = err.param.opts[0] if err.param.opts else str(err.param.name)
        return f"{one_line(name)}: {REQUIRED}"
    text = one_line(err.format_message())
    if match := _BAD_VALUE.match(text):
        msg = match["msg"].split(", unable to")[0].rstrip(".")
        if msg.startswith("Input should be "):
            expected = msg.removeprefix("Input should be ")
            msg = "must be " + _CLICK_TYPES.get(expected, expected)
        text = f"{match['opt']}: {msg}"
    return text


def _plain_flags(command: Any) -> None:
    """No ``<bool>`` after a plain flag in ``--help`` (it takes no value to describe).
    Once per command: a command run many times in one process is tidied the first time."""
    if getattr(command, "_headroom_plain_flags", False):
        return
    command._headroom_plain_flags = True
    for param in getattr(command, "params", ()):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    make_help = command.get_help_option  # click adds --help per context, after params

    def help_option(ctx: Any) -> Any:
        option = make_help(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub)


class OneLineErrors(TyperGroup):
    """The root group of ``headroom``: a usage error is one ``error:`` line on stderr
    (exit 2), like every input error, instead of click's usage box."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        _plain_flags(self)
        call = (args, prog_name, complete_var, False, windows_expand_args)
        if not standalone_mode:
            return super().main(*call, **extra)
        try:
            rv = super().main(*call, **extra)
        except click_errors.NoArgsIsHelpError as err:
            err.show()
            sys.exit(err.exit_code)
        except click_errors.ClickException as err:
            print(f"error: {usage_error_line(err)}", file=sys.stderr)
            sys.exit(err.exit_code)
        except typer.Abort:
            print("error: aborted", file=sys.stderr)
            sys.exit(EXIT_FAILED)
        sys.exit(rv if isinstance(rv, int) else 0)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn Headroom errors into one stderr line and an exit code (2 for bad input)."""
    try:
        yield
    except InputError as err:
        fail(str(err), EXIT_INPUT)
    except HeadroomError as err:
        fail(str(err), EXIT_FAILED)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 event``, ``2 events`` (``plural`` for irregular nouns)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def print_json(obj: Any) -> None:
    """Machine-readable output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend: charts are files, no display is needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, dpi: int | None = None) -> None:
    """Write a matplotlib figure to ``path`` (closing it); an unwritable path is bad input."""
    import matplotlib.pyplot as plt

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    except OSError as err:
        fail(f"{path}: cannot write chart: {err.strerror or err}", EXIT_INPUT)
    finally:
        plt.close(fig)


def duration_option(value: str, option: str) -> float:
    """Seconds of a duration option (``90s``, ``15m``, ``1h``, ``2d``); a bad one exits with
    one line naming ``option``. Each command checks its own bounds."""
    try:
        return parse_duration(value)
    except ValueError as err:
        fail(f"{option}: {err}", EXIT_INPUT)


# -- options several commands share: declared once, so a flag means one thing everywhere ----

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
ChartOpt = Annotated[Path | None, typer.Option("--chart", help="Write a PNG chart here.")]
CalendarOpt = Annotated[
    Path | None, typer.Option("--calendar", help="Calendar of demand events (YAML or ICS).")
]
PolicyTargetOpt = Annotated[
    str | None, typer.Option("--target", help="The policy's target (default: its first).")
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Change nothing; show what would be done.")
]


# -- commands that share options -----------------------------------------------------------

Option = tuple[str, Any, Any]  # (parameter name, Annotated[type, typer.Option(...)], default)
REQUIRED_OPTION = inspect.Parameter.empty  # an Option's default when it has none
_KEYWORD = inspect.Parameter.KEYWORD_ONLY


def _parameters(options: Sequence[Option]) -> list[inspect.Parameter]:
    return [inspect.Parameter(name, _KEYWORD, default=d, annotation=a) for name, a, d in options]


def with_options(
    *,
    before: Sequence[Option] = (),
    after: Sequence[Option] = (),
    takes: int,
    make: Callable[[dict[str, Any]], tuple[Any, ...]],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A typer command over options several commands share, written once.

    The command's options are ``before``, then the body's own (its parameters after the
    first ``takes``), then ``after``. Inside :func:`errors_to_exit`, ``make`` turns the
    shared options' values into the body's first ``takes`` arguments (a connection, the
    loaded inputs), and the body runs with them and its own options."""
    shared = [*before, *after]

    def wrap(body: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(body, eval_str=True).parameters.values())[takes:]
        params = [
            *_parameters(before),
            *(p.replace(kind=_KEYWORD) for p in own),
            *_parameters(after),
        ]

        def command(**values: Any) -> None:
            with errors_to_exit():
                made = make({name: values[name] for name, _, _ in shared})
                body(*made, **{p.name: values[p.name] for p in own})

        setattr(command, "__signature__", inspect.Signature(params))  # noqa: B010 - typer reads it
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__name__, command.__doc__ = body.__name__, body.__doc__
        return command

    return wrap
