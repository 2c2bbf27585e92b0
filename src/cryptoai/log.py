"""Logging setup for command-line use; the library itself only calls ``logging.getLogger``."""

from __future__ import annotations

import logging
import sys


def setup_logging(verbose: bool = False) -> None:
    """Plain one-line log records on stderr, so stdout stays clean for results."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("urllib3", "ccxt", "matplotlib", "numba", "alembic", "mlflow", "PIL", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
