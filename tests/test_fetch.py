"""Incremental fetch into the store, with a deterministic in-test source."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from cryptoai.data.fetch import FetchReport, fetch_to_store
from cryptoai.data.sources.base import Source
from cryptoai.data.store import RawStore, SeriesKey
from cryptoai.data.symbols import canonical
from cryptoai.data.timeframes import bar_grid, timeframe_to_timedelta
from cryptoai.errors import BadInputError, SourceError

NOW = pd.Timestamp("2030-01-01", tz="UTC")  # far after every range below unless a test says so


def formula_bars(index: pd.DatetimeIndex) -> pd.DataFrame:
    """Candles that depend only on their open time, so any fetch of a bar agrees."""
    index = pd.DatetimeIndex(index, name="timestamp").as_unit("ns")
    t = index.asi8 / 3.6e12  # hours since 1970
    close = 100 + 10 * np.sin(t / 7) + (t % 5)
    open_ = 100 + 10 * np.sin((t - 1) / 7) + ((t - 1) % 5)
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + 1,
            "low": np.minimum(open_, close) - 1,
            "close": close,
            "volume": 1 + (t % 3),
        },
        index=index,
    )


def expected(start: str, end: str, timeframe: str = "1h", gaps=()) -> pd.DataFrame:
    grid = bar_grid(pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC"), timeframe)
    return formula_bars(grid[~grid.isin(pd.to_datetime(list(gaps), utc=True))])


class FormulaSource(Source):
    """Pages of formula candles; can skip bars (exchange gaps), overshoot the asked range
    like an exchange returning the candle in progress, or fail after N pages."""

    exchange = "formula"

    def __init__(self, page_size=10, fail_after=None, gaps=(), overshoot=0):
        self.page_size = page_size
        self.fail_after = fail_after
        self.gaps = pd.DatetimeIndex(pd.to_datetime(list(gaps), utc=True))
        self.overshoot = overshoot
        self.requests: list[tuple[pd.Timestamp, pd.Timestamp]] = []
        self.pages = 0
        self.error = SourceError("formula exchange is down: retry later")

    def resolve_symbol(self, symbol: str) -> str:
        sym = canonical(symbol)
        if sym not in {"BTC/USDT", "ETH/USDT"}:
            raise BadInputError(f"formula has no market {symbol!r}: use BTC/USDT or ETH/USDT")
        return sym

    def fetch(self, symbol, timeframe, start, end) -> Iterator[pd.DataFrame]:
        self.requests.append((start, end))
        pad = self.overshoot * timeframe_to_timedelta(timeframe)
        grid = bar_grid(start - pad, end + pad, timeframe)
        grid = grid[~grid.isin(self.gaps)]
        for i in range(0, len(grid), self.page_size):
            if self.fail_after is not None and self.pages >= self.fail_after:
                raise self.error
            self.pages += 1
            yield formula_bars(grid[i : i + self.page_size])


class CountingStore(RawStore):
    """A real store that also remembers the size of every write it was given."""

    def __init__(self, root):
        super().__init__(root)
        self.writes: list[int] = []

    def write(self, exchange, symbol, timeframe, frame):
        self.writes.append(len(frame))
        return super().write(exchange, symbol, timeframe, frame)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_full_fetch_writes_each_page_as_it_arrives(tmp_path):
    store, source = CountingStore(tmp_path), FormulaSource(page_size=10)
    report = fetch_to_store(source, store, "btcusdt", "1h", "2024-01-01", "2024-01-03", now=NOW)
    assert store.writes == [10, 10, 10, 10, 8]
    assert source.requests == [(ts("2024-01-01"), ts("2024-01-03"))]
    assert report == FetchReport(
        series=SeriesKey("formula", "BTC/USDT", "1h"),
        requested=(ts("2024-01-01"), ts("2024-01-03")),
        bars_written=48,
        ranges_fetched=[(ts("2024-01-01"), ts("2024-01-03"))],
        already_present=0,
    )
    loaded = store.load("formula", "BTC/USDT", "1h")
    pd.testing.assert_frame_equal(loaded, expected("2024-01-01", "2024-01-03"), check_freq=False)
    assert "48 bars written" in str(report)


def test_interrupted_fetch_keeps_its_pages_and_resumes_where_it_stopped(tmp_path):
    store = RawStore(tmp_path)
    broken = FormulaSource(page_size=10, fail_after=3)
    with pytest.raises(SourceError) as excinfo:
        fetch_to_store(broken, store, "BTC/USDT", "1h", "2024-01-01", "2024-01-03", now=NOW)
    assert excinfo.value is broken.error  # propagated unchanged
    partial = store.load("formula", "BTC/USDT", "1h")
    pd.testing.assert_frame_equal(
        partial, expected("2024-01-01", "2024-01-02 06:00"), check_freq=False
    )
    assert store.verify() == []
    assert store.manifest("formula", "BTC/USDT", "1h").covered == []  # nothing fully fetched

    healthy = FormulaSource(page_size=10)
    report = fetch_to_store(healthy, store, "BTC/USDT", "1h", "2024-01-01", "2024-01-03", now=NOW)
    assert healthy.requests == [(ts("2024-01-02 06:00"), ts("2024-01-03"))]
    assert (report.bars_written, report.already_present) == (18, 30)
    full = store.load("formula", "BTC/USDT", "1h")
    pd.testing.assert_frame_equal(full, expected("2024-01-01", "2024-01-03"), check_freq=False)


def test_exchange_gaps_are_requested_once(tmp_path):
    gaps = ["2024-01-01 10:00", "2024-01-01 11:00", "2024-01-01 12:00", "2024-01-02 23:00"]
    store = RawStore(tmp_path)
    first = FormulaSource(gaps=gaps)
    report = fetch_to_store(first, store, "ETH/USDT", "1h", "2024-01-01", "2024-01-03", now=NOW)
    assert report.bars_written == 48 - 4
    pd.testing.assert_frame_equal(
        store.load("formula", "ETH/USDT", "1h"),
        expected("2024-01-01", "2024-01-03", gaps=gaps),
        check_freq=False,
    )

    again = FormulaSource(gaps=gaps)
    report = fetch_to_store(again, store, "ETH/USDT", "1h", "2024-01-01", "2024-01-03", now=NOW)
    assert again.requests == []
    assert (report.bars_written, report.already_present, report.ranges_fetched) == (0, 48, [])

    later = FormulaSource(gaps=gaps)
    fetch_to_store(later, store, "ETH/USDT", "1h", "2023-12-31 20:00", "2024-01-04", now=NOW)
    assert later.requests == [
        (ts("2023-12-31 20:00"), ts("2024-01-01")),
        (ts("2024-01-03"), ts("2024-01-04")),
    ]


def test_bars_in_progress_or_outside_the_range_are_never_stored(tmp_path):
    store = RawStore(tmp_path)
    now = ts("2024-01-02 05:30")  # the 05:00 bar is still open
    source = FormulaSource(overshoot=3)  # answers with bars before and after what was asked
    report = fetch_to_store(source, store, "BTC/USDT", "1h", "2024-01-01", "2024-01-03", now=now)
    assert report.requested == (ts("2024-01-01"), ts("2024-01-02 05:00"))
    assert source.requests == [report.requested]
    stored = store.load("formula", "BTC/USDT", "1h")
    pd.testing.assert_frame_equal(
        stored, expected("2024-01-01", "2024-01-02 05:00"), check_freq=False
    )

    later = FormulaSource(overshoot=3)
    fetch_to_store(
        later, store, "BTC/USDT", "1h", "2024-01-01", "2024-01-03", now=ts("2024-01-02 09:10")
    )
    assert later.requests == [(ts("2024-01-02 05:00"), ts("2024-01-02 09:00"))]
    assert store.load("formula", "BTC/USDT", "1h").index[-1] == ts("2024-01-02 08:00")


def test_weekly_and_minute_timeframes_clip_on_their_own_grid(tmp_path):
    store = RawStore(tmp_path)
    source = FormulaSource(page_size=500)
    report = fetch_to_store(
        source, store, "BTC/USDT", "1m", "2024-01-01", None, now=ts("2024-01-01 03:07:59")
    )
    assert report.requested[1] == ts("2024-01-01 03:07") and report.bars_written == 187
    weekly = fetch_to_store(
        FormulaSource(), store, "BTC/USDT", "1w", "2023-11-01", None, now=ts("2024-01-01")
    )
    stored = store.load("formula", "BTC/USDT", "1w")
    assert weekly.bars_written == len(stored) == 8
    assert stored.index[-1] + pd.Timedelta(weeks=1) <= ts("2024-01-01")


def test_bad_requests_fail_before_any_fetch(tmp_path):
    store, source = RawStore(tmp_path), FormulaSource()
    with pytest.raises(BadInputError, match="no market 'DOGE/USDT'"):
        fetch_to_store(source, store, "DOGE/USDT", "1h", "2024-01-01", "2024-01-02", now=NOW)
    with pytest.raises(BadInputError, match="give an earlier --start"):
        fetch_to_store(source, store, "BTC/USDT", "1h", "2030-01-01 00:00", None, now=NOW)
    with pytest.raises(BadInputError, match="empty date range"):
        fetch_to_store(source, store, "BTC/USDT", "1h", "2024-01-02", "2024-01-01", now=NOW)
    with pytest.raises(BadInputError, match="unknown timeframe"):
        fetch_to_store(source, store, "BTC/USDT", "an hour", "2024-01-01", "2024-01-02", now=NOW)
    assert source.requests == []
    assert not any(tmp_path.iterdir())


def test_a_deleted_day_is_fetched_again_even_inside_a_covered_range(tmp_path):
    store = RawStore(tmp_path)
    fetch_to_store(FormulaSource(), store, "BTC/USDT", "1h", "2024-01-01", "2024-01-04", now=NOW)
    day2 = store.series_dir("formula", "BTC/USDT", "1h") / "2024-01-02.parquet"
    day2.unlink()  # what verify() advises for a damaged file
    assert any("listed in the manifest but missing" in p for p in store.verify())

    refetch = FormulaSource()
    report = fetch_to_store(refetch, store, "BTC/USDT", "1h", "2024-01-01", "2024-01-04", now=NOW)
    assert refetch.requests == [(ts("2024-01-02"), ts("2024-01-03"))]
    assert report.bars_written == 24
    pd.testing.assert_frame_equal(
        store.load("formula", "BTC/USDT", "1h"),
        expected("2024-01-01", "2024-01-04"),
        check_freq=False,
    )
    assert store.verify() == []


def test_a_deleted_day_the_source_no_longer_has_becomes_a_known_gap(tmp_path):
    store = RawStore(tmp_path)
    fetch_to_store(FormulaSource(), store, "BTC/USDT", "1h", "2024-01-01", "2024-01-04", now=NOW)
    (store.series_dir("formula", "BTC/USDT", "1h") / "2024-01-02.parquet").unlink()
    whole_day = pd.date_range("2024-01-02", periods=24, freq="1h", tz="UTC")
    fetch_to_store(
        FormulaSource(gaps=whole_day), store, "BTC/USDT", "1h", "2024-01-01", "2024-01-04", now=NOW
    )
    assert store.verify() == []
    last = FormulaSource()
    fetch_to_store(last, store, "BTC/USDT", "1h", "2024-01-01", "2024-01-04", now=NOW)
    assert last.requests == []
