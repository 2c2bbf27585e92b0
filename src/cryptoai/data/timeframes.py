"""Timeframe strings (ccxt style: 1m, 5m, 1h, 4h, 1d, 1w) and date-range parsing."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError

_UNITS = {"s": "s", "m": "min", "h": "h", "d": "D", "w": "W"}
_TF_RE = re.compile(r"^(\d+)([smhdw])$")


def timeframe_to_timedelta(timeframe: str) -> pd.Timedelta:
    """Bar length of a ccxt-style timeframe such as ``1m`` or ``4h``."""
    m = _TF_RE.match(timeframe.strip()) if isinstance(timeframe, str) else None
    if not m and isinstance(timeframe, str) and re.fullmatch(r"\d+M", timeframe.strip()):
        raise BadInputError(
            f"timeframe {timeframe.strip()!r} (monthly candles) is not supported: months differ in length,"
            " so they have no fixed bar grid; use 1w or 1d and resample"
        )
    if not m or int(m.group(1)) == 0:
        raise BadInputError(
            f"unknown timeframe {timeframe!r}: use a number and a unit, e.g. 1m, 5m, 15m, 1h, 4h, 1d"
        )
    n, unit = int(m.group(1)), m.group(2)
    if unit == "w":
        return pd.Timedelta(days=7 * n)
    return pd.Timedelta(n, unit=_UNITS[unit])


def timeframe_to_ms(timeframe: str) -> int:
    return int(timeframe_to_timedelta(timeframe) / pd.Timedelta(milliseconds=1))


def timeframe_to_pandas(timeframe: str) -> str:
    """Pandas frequency alias for a timeframe (``1h`` -> ``1h``, ``1d`` -> ``1D``)."""
    td = timeframe_to_timedelta(timeframe)
    return pd.tseries.frequencies.to_offset(td).freqstr


def parse_utc(value: str | pd.Timestamp, name: str = "date") -> pd.Timestamp:
    """Parse a date or datetime as UTC; naive input is taken to be UTC."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise BadInputError(
            f"cannot read {name} {value!r}: use ISO format, e.g. 2024-01-31 or 2024-01-31T12:00"
        ) from exc
    if ts is pd.NaT:
        raise BadInputError(f"{name} is empty: give an ISO date such as 2024-01-31")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parse_range(
    start: str | pd.Timestamp, end: str | pd.Timestamp | None = None
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Parse a ``[start, end)`` UTC range; ``end`` defaults to now. Empty or reversed is an error."""
    s = parse_utc(start, "--start")
    e = parse_utc(end, "--end") if end is not None else pd.Timestamp.now(tz="UTC").floor("min")
    if e <= s:
        raise BadInputError(
            f"empty date range: --start {s:%Y-%m-%d %H:%M} is not before --end {e:%Y-%m-%d %H:%M};"
            " --start is inclusive and --end exclusive, so give an --end after --start"
        )
    return s, e


def bar_grid(start: pd.Timestamp, end: pd.Timestamp, timeframe: str) -> pd.DatetimeIndex:
    """Every bar open time in ``[start, end)`` aligned to the timeframe (weeks start Monday)."""
    td = timeframe_to_timedelta(timeframe)
    first = start.ceil(td) if td < pd.Timedelta(days=7) else _ceil_epoch(start, td)
    return pd.date_range(first, end, freq=td, inclusive="left", tz="UTC", name="timestamp")


def _anchor(td: pd.Timedelta) -> pd.Timestamp:
    # Weekly bars open on Mondays (as on Binance); 1970-01-05 is the first Monday after epoch.
    return pd.Timestamp("1970-01-05" if td >= pd.Timedelta(days=7) else 0, tz="UTC")


def _ceil_epoch(ts: pd.Timestamp, td: pd.Timedelta) -> pd.Timestamp:
    epoch = _anchor(td)
    n = -((epoch - ts) // td)
    return epoch + n * td


def floor_to_bar(ts: pd.Timestamp, timeframe: str) -> pd.Timestamp:
    """Open time of the bar that contains ``ts`` (on the same grid as ``bar_grid``)."""
    td = timeframe_to_timedelta(timeframe)
    epoch = _anchor(td)
    return epoch + ((ts - epoch) // td) * td


def off_grid(ns: np.ndarray, timeframe: str) -> np.ndarray:
    """Which epoch-nanosecond open times are not on ``timeframe``'s grid (see ``bar_grid``)."""
    td = timeframe_to_timedelta(timeframe)
    return (np.asarray(ns, dtype="int64") - _anchor(td).value) % td.value != 0
