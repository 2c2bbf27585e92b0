"""The OHLCV frame contract shared by every part of cryptoai.

A frame is indexed by ``timestamp`` (tz-aware UTC bar open times, strictly increasing,
unique) with float64 ``open high low close volume`` and optional extra columns
(``quote_volume``, ``trades``, ``taker_buy_base``, ``taker_buy_quote``).
"""

from __future__ import annotations

import pandas as pd

OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
EXTRA_COLUMNS: tuple[str, ...] = ("quote_volume", "trades", "taker_buy_base", "taker_buy_quote")
INDEX_NAME = "timestamp"


def empty_ohlcv(extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """An empty frame with the contract's index and dtypes."""
    cols = list(OHLCV_COLUMNS) + list(extra)
    idx = pd.DatetimeIndex([], tz="UTC", name=INDEX_NAME)
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols}, index=idx)


def from_epoch_ms(
    rows: list[list[float]] | list[tuple], extra: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Build a frame from ``[ts_ms, open, high, low, close, volume, *extra]`` rows."""
    cols = ["ts", *OHLCV_COLUMNS, *extra]
    if not rows:
        return empty_ohlcv(extra)
    df = pd.DataFrame([list(r)[: len(cols)] for r in rows], columns=cols)
    idx = pd.to_datetime(df.pop("ts").astype("int64"), unit="ms", utc=True)
    df.index = pd.DatetimeIndex(idx, name=INDEX_NAME)
    return df.astype("float64")


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    """Coerce to the contract's dtypes and index: UTC, sorted, de-duplicated (last wins).

    Sorting and de-duplication here are for merging fetched pages; data *read from a
    user* is validated instead (see ``cryptoai.data.validate``) so problems are reported.
    """
    out = df.copy()
    if not isinstance(out.index, pd.DatetimeIndex):
        out.index = pd.DatetimeIndex(out.index)
    out.index = (
        out.index.tz_localize("UTC") if out.index.tz is None else out.index.tz_convert("UTC")
    )
    out.index = out.index.as_unit("ns")
    out.index.name = INDEX_NAME
    out = out[~out.index.duplicated(keep="last")].sort_index()
    known = [c for c in (*OHLCV_COLUMNS, *EXTRA_COLUMNS) if c in out.columns]
    others = [c for c in out.columns if c not in known]
    out = out[known + others]
    return out.astype({c: "float64" for c in known})


def merge(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Union of two frames; on overlapping timestamps the newer rows win."""
    if old.empty:
        return normalize(new)
    if new.empty:
        return normalize(old)
    return normalize(pd.concat([old, new]))
