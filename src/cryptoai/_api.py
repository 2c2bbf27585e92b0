"""The few verbs of ``import cryptoai`` that are not simply another module's function: they
join two steps a researcher always takes together (name a source, then fetch into the store)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from cryptoai.data.fetch import FetchReport
    from cryptoai.data.validate import ValidationReport


def load(
    ref: str | Path,
    start: str | None = None,
    end: str | None = None,
    *,
    store: str | Path = "data/raw",
) -> pd.DataFrame:
    """An OHLCV frame from a CSV/Parquet file or a store reference ``exchange/symbol/timeframe``
    (``"synthetic/BTC-USDT/1h"``), verified and checked against the OHLCV contract."""
    from cryptoai.data.loading import load_frame

    return load_frame(ref, start=start, end=end, store_root=store)


def fetch(
    source: str,
    symbol: str,
    timeframe: str,
    start: str,
    end: str | None = None,
    *,
    store: str | Path = "data/raw",
    progress: bool = False,
    **source_options: Any,
) -> FetchReport:
    """Fetch the bars the store lacks from ``source`` (``synthetic``, ``binance``, ``ccxt`` with
    ``exchange=``, ``coingecko``, ``csv`` with ``path=``); returns what was done."""
    from cryptoai.data.fetch import fetch_to_store
    from cryptoai.data.sources import make_source
    from cryptoai.data.store import RawStore

    src = make_source(source, timeframe=timeframe, **source_options)
    try:
        return fetch_to_store(
            src, RawStore(store), symbol, timeframe, start, end, progress=progress
        )
    finally:
        close = getattr(src, "close", None)
        if callable(close):
            close()


def validate(df: pd.DataFrame, timeframe: str | None = None) -> ValidationReport:
    """The full data-quality report of a frame: contract violations, gaps, duplicates."""
    from cryptoai.data.validate import validate_ohlcv

    return validate_ohlcv(df, timeframe)
