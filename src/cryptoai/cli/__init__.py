"""The ``cryptoai`` command. Each subcommand group lives in its own module and registers
itself on the shared app; heavy imports happen inside the commands, so ``--help`` is fast."""

from __future__ import annotations

import sys

import click
import typer

from cryptoai.errors import CryptoaiError
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


def _register() -> None:
    from cryptoai.cli import backtest, data, experiments, features, train

    for module in (data, features, train, backtest, experiments):
        module.register(app)


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
                raise click.UsageError("--plugins needs a PATH (a .py file, folder or module)")
            plugins.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("--plugins="):
            plugins.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    return rest, plugins


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input ends with one line on stderr and a non-zero exit code."""
    _register()
    try:
        argv, plugins = _take_plugins(list(sys.argv[1:] if argv is None else argv))
        if plugins:
            from cryptoai.plugins import load_plugins

            load_plugins(plugins)
        result = app(args=argv, standalone_mode=False, prog_name="cryptoai")
    except CryptoaiError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's one-line error
        return exc.exit_code
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)  # noqa: T201
        return 130
    except KeyboardInterrupt:
        print("interrupted: stored data is intact; re-run to resume", file=sys.stderr)  # noqa: T201
        return 130
    return result if isinstance(result, int) else 0
