"""Store coverage (DuckDB) checked against the same numbers computed in pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptoai.data.coverage import COVERAGE_COLUMNS, coverage, format_coverage
from cryptoai.data.store import RawStore
from cryptoai.data.timeframes import timeframe_to_timedelta
from cryptoai.errors import DataValidationError


def bars(start: str, periods: int, freq: str, drop=()) -> pd.DataFrame:
    idx = pd.date_range(start, periods=periods, freq=freq, tz="UTC", name="timestamp").as_unit("ns")
    close = 100 + np.arange(periods, dtype=float)
    frame = pd.DataFrame(
        {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1.0},
        index=idx,
    )
    return frame.drop(frame.index[list(drop)])


SERIES = {
    ("binance", "BTC/USDT", "1h"): bars(
        "2024-01-01 03:00", 72, "1h", drop=[5, 30, 31, 32, 33, 34, 60]
    ),
    ("binance", "ETH/USDT", "15m"): bars("2024-01-01", 192, "15min"),
    ("kraken", "BTC/EUR", "1d"): bars("2023-12-01", 20, "1D", drop=[4, 5, 6]),
}


def reference(frame: pd.DataFrame, timeframe: str) -> dict:
    """The coverage numbers of one series, the plain pandas way."""
    td = timeframe_to_timedelta(timeframe)
    grid = pd.date_range(frame.index[0], frame.index[-1], freq=td)
    steps = frame.index.to_series().diff().dropna()
    gaps = steps[steps > td]
    return {
        "first": frame.index[0],
        "last": frame.index[-1],
        "bars": len(frame),
        "missing": len(grid.difference(frame.index)),
        "gaps": len(gaps),
        "largest_gap": (gaps - td).max() if len(gaps) else pd.Timedelta(0),
    }


@pytest.fixture
def store_root(tmp_path):
    store = RawStore(tmp_path)
    for (exchange, symbol, timeframe), frame in SERIES.items():
        store.write(exchange, symbol, timeframe, frame)
    return tmp_path


def test_coverage_matches_pandas(store_root):
    table = coverage(store_root)
    assert list(table.columns) == list(COVERAGE_COLUMNS)
    assert list(zip(table["exchange"], table["symbol"], table["timeframe"], strict=True)) == sorted(
        SERIES, key=lambda k: (k[0], k[1].replace("/", "-"), k[2])
    )
    for row in table.itertuples(index=False):
        ref = reference(SERIES[(row.exchange, row.symbol, row.timeframe)], row.timeframe)
        got = {k: getattr(row, k) for k in ref}
        assert got == ref, (row.symbol, got, ref)
    btc = table[table["symbol"] == "BTC/USDT"].iloc[0]
    assert (btc["missing"], btc["gaps"], btc["largest_gap"]) == (7, 3, pd.Timedelta(hours=5))


def test_format_coverage_is_an_aligned_table(store_root):
    text = format_coverage(coverage(store_root))
    lines = text.splitlines()
    assert len(lines) == 1 + len(SERIES)
    assert lines[0].split() == list(COVERAGE_COLUMNS)
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header
    btc = next(line for line in lines if "BTC/USDT" in line)
    assert "2024-01-01 03:00" in btc and "5h" in btc
    eth = next(line for line in lines if "ETH/USDT" in line)
    assert eth.split()[-1] == "-"  # no gap


def test_empty_or_absent_store(tmp_path):
    for root in (tmp_path, tmp_path / "absent"):
        table = coverage(root)
        assert table.empty and list(table.columns) == list(COVERAGE_COLUMNS)
    assert "empty" in format_coverage(coverage(tmp_path))


def test_damaged_file_gives_one_line_error(store_root):
    victim = next(store_root.glob("kraken/*/*/*.parquet"))
    victim.write_bytes(b"garbage")
    with pytest.raises(DataValidationError, match="cryptoai validate.*cryptoai repair") as excinfo:
        coverage(store_root)
    assert "\n" not in str(excinfo.value)
