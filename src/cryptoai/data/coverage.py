"""What the raw store holds: one DuckDB pass over every day file, summarised per series."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cryptoai.data.symbols import from_path
from cryptoai.data.timeframes import timeframe_to_timedelta
from cryptoai.errors import BadInputError, DataValidationError

COVERAGE_COLUMNS: tuple[str, ...] = (
    "exchange",
    "symbol",
    "timeframe",
    "first",
    "last",
    "bars",
    "missing",
    "gaps",
    "largest_gap",
)

# Per series: first/last bar, bars, grid bars absent between first and last, and the gaps
# (steps longer than one bar between consecutive bars): how many and the longest.
_QUERY = """
WITH bars AS (
    SELECT
        list_extract(string_split(replace(filename, '\\', '/'), '/'), -4) AS exchange,
        list_extract(string_split(replace(filename, '\\', '/'), '/'), -3) AS symbol,
        list_extract(string_split(replace(filename, '\\', '/'), '/'), -2) AS timeframe,
        epoch_us(CAST("timestamp" AS TIMESTAMPTZ)) AS ts
    FROM read_parquet(?, filename = true, hive_partitioning = false)
),
steps AS (
    SELECT b.exchange, b.symbol, b.timeframe, b.ts, t.bar_us,
           b.ts - lag(b.ts) OVER (PARTITION BY b.exchange, b.symbol, b.timeframe ORDER BY b.ts)
               AS step
    FROM bars b JOIN timeframes t USING (timeframe)
)
SELECT exchange, symbol, timeframe,
       min(ts) AS first_us,
       max(ts) AS last_us,
       count(*) AS bars,
       (max(ts) - min(ts)) // any_value(bar_us) + 1 - count(*) AS missing,
       count(*) FILTER (WHERE step > bar_us) AS gaps,
       coalesce(max(CASE WHEN step > bar_us THEN step - bar_us END), 0) AS largest_gap_us
FROM steps
GROUP BY exchange, symbol, timeframe
ORDER BY exchange, symbol, timeframe
"""


def coverage(root: str | Path = "data/raw") -> pd.DataFrame:
    """Per exchange/symbol/timeframe: first/last bar, bars, missing bars, gaps, largest gap.

    ``missing`` counts grid bars absent between the first and last bar; ``largest_gap`` is
    the length of the longest run of absent bars (0 when there is none).
    """
    import duckdb

    root = Path(root)
    files = sorted(str(p) for p in root.glob("*/*/*/*.parquet")) if root.is_dir() else []
    if not files:
        return _empty()
    timeframes = sorted({Path(f).parent.name for f in files})
    try:
        bar_us = [timeframe_to_timedelta(tf) // pd.Timedelta(microseconds=1) for tf in timeframes]
    except BadInputError as exc:
        raise DataValidationError(f"{root} holds a folder that is not a timeframe: {exc}") from exc
    tf_table = pd.DataFrame({"timeframe": timeframes, "bar_us": bar_us})
    con = duckdb.connect()
    try:
        con.register("timeframes", tf_table)
        raw = con.execute(_QUERY, [files]).df()
    except duckdb.Error as exc:
        raise DataValidationError(
            f"cannot summarise the store at {root} ({str(exc).splitlines()[0]}): run the store"
            " check (verify) to find damaged files"
        ) from exc
    finally:
        con.close()
    out = pd.DataFrame(
        {
            "exchange": raw["exchange"].astype(str),
            "symbol": [_symbol(s) for s in raw["symbol"]],
            "timeframe": raw["timeframe"].astype(str),
            "first": pd.to_datetime(raw["first_us"].astype("int64"), unit="us", utc=True),
            "last": pd.to_datetime(raw["last_us"].astype("int64"), unit="us", utc=True),
            "bars": raw["bars"].astype("int64"),
            "missing": raw["missing"].astype("int64"),
            "gaps": raw["gaps"].astype("int64"),
            "largest_gap": pd.to_timedelta(raw["largest_gap_us"].astype("int64"), unit="us"),
        }
    )
    return out[list(COVERAGE_COLUMNS)].reset_index(drop=True)


def format_coverage(df: pd.DataFrame) -> str:
    """Aligned text table of ``coverage()`` for the terminal."""
    if df.empty:
        return "the store is empty: fetch some candles first (cryptoai fetch ...)"
    shown = df.copy()
    for col in ("first", "last"):
        shown[col] = shown[col].dt.strftime("%Y-%m-%d %H:%M")
    shown["largest_gap"] = [_duration(td) for td in shown["largest_gap"]]
    return shown.to_string(index=False)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "exchange": pd.Series(dtype=str),
            "symbol": pd.Series(dtype=str),
            "timeframe": pd.Series(dtype=str),
            "first": pd.Series(dtype="datetime64[us, UTC]"),
            "last": pd.Series(dtype="datetime64[us, UTC]"),
            "bars": pd.Series(dtype="int64"),
            "missing": pd.Series(dtype="int64"),
            "gaps": pd.Series(dtype="int64"),
            "largest_gap": pd.Series(dtype="timedelta64[us]"),
        }
    )


def _symbol(folder: str) -> str:
    try:
        return from_path(folder)
    except BadInputError:
        return folder


def _duration(td: pd.Timedelta) -> str:
    """``2d 4h``, ``45m``, ``-`` for no gap: short and readable in a table."""
    if td <= pd.Timedelta(0):
        return "-"
    parts = []
    days, rest = divmod(int(td.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")):
        if n:
            parts.append(f"{n}{unit}")
    return " ".join(parts)
