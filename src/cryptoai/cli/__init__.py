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
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    setup_logging(verbose)


def _register() -> None:
    from cryptoai.cli import backtest, data, experiments, features, train

    for module in (data, features, train, backtest, experiments):
        module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input ends with one line on stderr and a non-zero exit code."""
    _register()
    try:
        result = app(args=argv, standalone_mode=False)
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
