"""The ``cryptoai`` command. Each subcommand group lives in its own module and registers
itself on the shared app; heavy imports happen inside the commands, so ``--help`` is fast."""

from __future__ import annotations

import sys

import typer

from cryptoai.errors import BadInputError, CryptoaiError
from cryptoai.log import setup_logging

app = typer.Typer(
    name="cryptoai",
    help="Machine-learning trading research on crypto markets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    plugins: list[str] = typer.Option(
        [],
        "--plugins",
        help="A .py file, folder or module registering strategies, models or features;"
        " repeatable, and accepted before or after the command name.",
    ),
) -> None:
    setup_logging(verbose)


def _usage_error_types() -> tuple[type[Exception], ...]:
    """The exceptions a mistyped command line raises. typer >= 0.2x parses with its own copy
    of click (``typer._click``, whose errors derive from ``typer.TyperException``, not from
    ``click.ClickException``), so catching click's classes alone let a typo escape as a
    traceback; standalone click is caught too, for commands built on it directly."""
    types: list[type[Exception]] = [typer.TyperException]
    try:
        import click
    except ImportError:  # pragma: no cover - typer no longer needs click
        return tuple(types)
    return (*types, click.ClickException)


def _abort_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [typer.Abort]
    try:
        import click
    except ImportError:  # pragma: no cover
        return tuple(types)
    return (*types, click.Abort)


def _show(exc: Exception) -> None:
    """click's usage error: ``Usage: ...``, a help hint and ``Error: ...`` on stderr."""
    show = getattr(exc, "show", None)
    if callable(show):
        show()
    else:
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        print(f"Error: {message}", file=sys.stderr)  # noqa: T201


_registered = False


def _register() -> None:
    """Add every command group to ``app``, once per process: `main` runs many times in one
    process (tests, notebooks), and typer keeps every registration, so registering on each
    call made each later call slower (300 calls: 3,000 commands and 7 s to parse a line)."""
    global _registered
    if _registered:
        return
    from cryptoai.cli import (
        backtest,
        data,
        experiments,
        features,
        live,
        models,
        optimize,
        rl,
        serve,
        train,
    )

    for module in (data, features, train, backtest, experiments, optimize, models, serve, rl, live):
        module.register(app)
    _registered = True


def _take_plugins(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``--plugins PATH`` / ``--plugins=PATH`` out of argv, wherever they stand, so every
    command accepts them without declaring the option itself."""
    rest, plugins, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg == "--plugins":
            if i + 1 >= len(argv):
                raise BadInputError("--plugins needs a PATH (a .py file, folder or module)")
            plugins.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("--plugins="):
            plugins.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    return rest, plugins


def _load_plugins(paths: list[str]) -> None:
    """Import the plugins after the built-in strategies: a plugin that takes a built-in's name
    then fails at its own import, as a one-line error naming the plugin file (registered the
    other way round, the built-in's later import broke with a traceback blaming the built-in)."""
    from cryptoai.plugins import load_plugins
    from cryptoai.strategies import list_strategies

    list_strategies()
    load_plugins(paths)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input ends with one line on stderr and a non-zero exit code."""
    _register()
    usage_errors, aborts = _usage_error_types(), _abort_types()
    try:
        argv, plugins = _take_plugins(list(sys.argv[1:] if argv is None else argv))
        if plugins:
            _load_plugins(plugins)
        result = app(args=argv, standalone_mode=False, prog_name="cryptoai")
    except CryptoaiError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's one-line error
        return exc.exit_code
    except usage_errors as exc:
        _show(exc)
        return int(getattr(exc, "exit_code", 2))
    except aborts:
        print("aborted", file=sys.stderr)  # noqa: T201
        return 130
    except KeyboardInterrupt:
        print("interrupted: stored data is intact; re-run to resume", file=sys.stderr)  # noqa: T201
        return 130
    return result if isinstance(result, int) else 0
