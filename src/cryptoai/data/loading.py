"""One entry point for "the data" a command is pointed at: a file or a store reference."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cryptoai.errors import BadInputError

DEFAULT_STORE = Path("data/raw")


def load_frame(
    ref: str | Path,
    start: str | None = None,
    end: str | None = None,
    store_root: str | Path = DEFAULT_STORE,
) -> pd.DataFrame:
    """Load an OHLCV frame from a CSV/Parquet file or ``exchange/symbol/timeframe`` in the store.

    ``start`` is inclusive and ``end`` exclusive (UTC). The result is validated against the
    OHLCV contract, so unsorted, duplicated or NaN candles are reported, not silently used.
    """
    from cryptoai.data.timeframes import parse_utc
    from cryptoai.data.validate import check_ohlcv

    path = Path(ref)
    if path.suffix.lower() in {".csv", ".parquet", ".pq"} or path.is_file():
        frame = _read_file(path)
    else:
        frame = _read_store(str(ref), start, end, store_root)
    if start is not None:
        frame = frame[frame.index >= parse_utc(start, "--start")]
    if end is not None:
        frame = frame[frame.index < parse_utc(end, "--end")]
    if frame.empty:
        raise BadInputError(f"no candles in {ref} for the requested range: widen --start/--end")
    check_ohlcv(frame, name=str(ref))
    return frame


def _read_file(path: Path) -> pd.DataFrame:
    from cryptoai.data.sources.csv_source import read_ohlcv_file

    if not path.is_file():
        raise BadInputError(f"data file {path} not found: check the path")
    return read_ohlcv_file(path)


def _read_store(
    ref: str, start: str | None, end: str | None, store_root: str | Path
) -> pd.DataFrame:
    from cryptoai.data.store import RawStore

    parts = ref.strip("/").split("/")
    if len(parts) == 4:  # exchange/BTC/USDT/1h
        parts = [parts[0], f"{parts[1]}/{parts[2]}", parts[3]]
    if len(parts) != 3:
        raise BadInputError(
            f"cannot read data reference {ref!r}: give a CSV/Parquet file or exchange/symbol/timeframe,"
            " e.g. synthetic/BTC-USDT/1h"
        )
    exchange, symbol, timeframe = parts
    return RawStore(store_root).load(exchange, symbol, timeframe, start=start, end=end)
