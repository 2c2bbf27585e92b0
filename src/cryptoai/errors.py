"""Errors that reach the user as one actionable line.

Every error raised for bad input or an unusable source derives from `CryptoaiError`;
the CLI prints its message on one line and exits non-zero. Messages say what went
wrong *and* what to do about it.
"""

from __future__ import annotations


class CryptoaiError(Exception):
    """Base class: the message is shown to the user as-is, on one line."""

    exit_code = 2

    def __str__(self) -> str:
        return " ".join(super().__str__().split())


class BadInputError(CryptoaiError):
    """The user asked for something that cannot be done (bad range, symbol, file...)."""


class SourceError(CryptoaiError):
    """A data source failed (unreachable, persistent server errors, rate limits)."""

    exit_code = 3


class DataValidationError(CryptoaiError):
    """Candles break the OHLCV contract."""


class ConfigError(CryptoaiError):
    """A YAML config is missing, malformed, or fails validation."""
