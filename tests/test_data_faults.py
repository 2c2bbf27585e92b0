"""Fetching under faults: real ccxt over loopback HTTP to a misbehaving Binance-like mock.

Every case checks against the mock's own generated candles: no bar lost, none invented, no
bad value stored, one-line errors, the store unchanged by a failure, and a re-run repairs.
Retries wait through a recorder, never the wall clock.
"""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import snapshot
from mock_exchange import KLINE_FAULTS, MockBinance

from cryptoai.data.coverage import coverage
from cryptoai.data.fetch import fetch_to_store
from cryptoai.data.sources.ccxt_source import CcxtSource
from cryptoai.data.sources.retry import RetryPolicy
from cryptoai.data.store import RawStore
from cryptoai.errors import DataValidationError, SourceError

H = pd.Timedelta(hours=1)
START, END = "2024-01-01", "2024-01-06"  # 120 hourly bars, 24 per page: 5 pages
CANDLE_FAULTS = [k for k in KLINE_FAULTS if k not in ("empty", "short")]
PAGE_FAULTS = ("malformed_json", "html")


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


class Sleeps(list):
    """A retry policy's sleep that records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def mock():
    with MockBinance(symbols=["BTC/USDT"], start="2023-12-30", end="2024-01-08") as m:
        yield m


def source(mock, sleeps, on_bad_candle="fail", retries=2) -> CcxtSource:
    policy = RetryPolicy(max_retries=retries, base_delay_s=0.5, sleep=sleeps)
    return CcxtSource(
        "binance",
        api_url=mock.url,
        retry=policy,
        page_limit=24,
        on_bad_candle=on_bad_candle,
        rate_limit=False,
    )


def want(mock, start=START, end=END) -> pd.DataFrame:
    frame = mock.frame("BTC/USDT")
    return frame[(frame.index >= ts(start)) & (frame.index < ts(end))]


def fetch(mock, store, sleeps, start=START, end=END, **kw):
    src = source(mock, sleeps, **kw)
    try:
        return fetch_to_store(src, store, "BTC/USDT", "1h", start, end, progress=False)
    finally:
        src.close()


def klines(mock) -> int:
    return len(mock.requests_to("/klines"))


def stored(store: RawStore) -> pd.DataFrame:
    return store.load("binance", "BTC/USDT", "1h")


def assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, expected, check_freq=False)


def only_series(root) -> pd.Series:
    table = coverage(root)
    assert len(table) == 1
    return table.iloc[0]


# ----------------------------------------------------------------- short and empty pages
@pytest.mark.parametrize("kind", ["short", "empty"])
def test_one_short_or_empty_page_in_the_middle_loses_nothing(tmp_path, mock, sleeps, kind):
    store = RawStore(tmp_path)
    mock.corrupt(kind, bar="2024-01-03 00:00")
    report = fetch(mock, store, sleeps)
    assert_same(stored(store), want(mock))
    assert report.bars_written == 120 and report.unconfirmed == []
    assert klines(mock) == 6  # 5 pages and the one asked again (empty) or continued (short)
    row = only_series(tmp_path)
    assert row["complete"] and row["missing"] == 0 and row["holes"] == []
    before = klines(mock)
    assert fetch(mock, store, sleeps).bars_written == 0
    assert klines(mock) == before  # nothing left to ask


def test_empty_answers_that_persist_are_not_recorded_as_covered(tmp_path, mock, sleeps):
    store = RawStore(tmp_path)
    mock.corrupt("empty", times=None)
    report = fetch(mock, store, sleeps)
    assert report.bars_written == 0
    assert report.unconfirmed == [(ts(START), ts(END))]
    assert "unconfirmed" in str(report)
    assert store.manifest("binance", "BTC/USDT", "1h").covered == []
    mock.clear_corruptions()
    fetch(mock, store, sleeps)  # the re-run asks again and gets everything
    assert_same(stored(store), want(mock))


def test_holes_at_start_middle_and_end_are_confirmed_and_listed(tmp_path, sleeps):
    gaps = [
        ("2024-01-01", "2024-01-01 06:00"),
        ("2024-01-03", "2024-01-03 02:00"),
        ("2024-01-05 20:00", "2024-01-06 04:00"),
    ]
    store = RawStore(tmp_path)
    with MockBinance(symbols=["BTC/USDT"], start="2023-12-30", end="2024-01-08", gaps=gaps) as m:
        fetch(m, store, sleeps)
        assert_same(stored(store), want(m))
        row = only_series(tmp_path)
        assert (row["start"], row["end"]) == (ts(START), ts(END))
        assert row["holes"] == [
            (ts("2024-01-01"), ts("2024-01-01 06:00"), 6, True),
            (ts("2024-01-03"), ts("2024-01-03 02:00"), 2, True),
            (ts("2024-01-05 20:00"), ts(END), 4, True),
        ]
        assert row["missing"] == 12 and not row["complete"]
        before = klines(m)
        fetch(m, store, sleeps)
        assert klines(m) == before  # confirmed holes are not asked for again


def test_a_hole_at_the_end_with_nothing_after_it_stays_missing(tmp_path, sleeps):
    store = RawStore(tmp_path)
    with MockBinance(symbols=["BTC/USDT"], start="2023-12-30", end="2024-01-05") as m:
        report = fetch(m, store, sleeps)
        assert report.unconfirmed == [(ts("2024-01-05"), ts(END))]
        assert_same(stored(store), want(m))
        row = only_series(tmp_path)
        assert row["holes"] == [(ts("2024-01-05"), ts(END), 24, False)]
        before = klines(m)
        fetch(m, store, sleeps)
        assert klines(m) > before  # not confirmed: asked again on the next run


# ----------------------------------------------------------------- bad pages
@pytest.mark.parametrize("kind", CANDLE_FAULTS)
def test_a_bad_page_once_is_retried_and_nothing_bad_is_stored(tmp_path, mock, sleeps, kind):
    store = RawStore(tmp_path)
    mock.corrupt(kind, bar="2024-01-03 05:00")
    fetch(mock, store, sleeps)
    assert_same(stored(store), want(mock))
    assert klines(mock) == 6 and sleeps == [0.5]  # the bad page asked again, after a backoff


@pytest.mark.parametrize("kind", CANDLE_FAULTS)
def test_a_page_that_stays_bad_stops_the_fetch_and_stores_nothing_of_it(
    tmp_path, mock, sleeps, kind
):
    store = RawStore(tmp_path)
    fetch(mock, store, sleeps, end="2024-01-03")
    before = snapshot(tmp_path)
    mock.corrupt(kind, times=None, bar="2024-01-03 05:00")
    with pytest.raises(SourceError) as err:
        fetch(mock, store, sleeps)
    message = str(err.value)
    assert "\n" not in message and mock.url in message and "gave up after 3 tries" in message
    if kind not in PAGE_FAULTS:
        assert "2024-01-03 05:00" in message
    assert snapshot(tmp_path) == before  # nothing of the bad page (the first asked) stored
    mock.clear_corruptions()
    fetch(mock, store, sleeps)  # the range stayed missing: a re-run repairs
    assert_same(stored(store), want(mock))


def test_skip_leaves_the_bad_candle_missing_and_a_rerun_fetches_it(tmp_path, mock, sleeps):
    store = RawStore(tmp_path)
    mock.corrupt("nan_close", times=None, bar="2024-01-03 05:00")
    report = fetch(mock, store, sleeps, on_bad_candle="skip")
    expected = want(mock)
    assert report.bars_skipped == 1
    assert_same(stored(store), expected.drop(ts("2024-01-03 05:00")))
    row = only_series(tmp_path)
    assert row["holes"] == [(ts("2024-01-03 05:00"), ts("2024-01-03 06:00"), 1, False)]
    mock.clear_corruptions()
    before = klines(mock)
    fetch(mock, store, sleeps)
    assert klines(mock) == before + 1  # only the skipped bar is asked for
    assert_same(stored(store), expected)


def test_the_fetcher_refuses_bad_candles_from_any_source(tmp_path, mock, sleeps):
    """A source that does not check its pages (here: ccxt's parsing bypassed) is checked by
    the fetcher before anything is stored."""
    store = RawStore(tmp_path)
    good = want(mock)
    bad = good.copy()
    bad.loc[ts("2024-01-02 03:00"), "low"] = bad.loc[ts("2024-01-02 03:00"), "high"] * 2

    class Raw(CcxtSource):
        def fetch(self, symbol, timeframe, start, end):
            yield bad[(bad.index >= start) & (bad.index < end)]

    src = Raw("binance", api_url=mock.url, rate_limit=False)
    with pytest.raises(DataValidationError, match="bar 2024-01-02 03:00: low") as err:
        fetch_to_store(src, store, "BTC/USDT", "1h", START, END, progress=False)
    assert "\n" not in str(err.value)
    assert not list(tmp_path.rglob("*.parquet"))
