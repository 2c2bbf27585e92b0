"""CcxtSource: real ccxt over real HTTP against the loopback mocks in ``mock_exchange``."""

from __future__ import annotations

import socket
import time

import pandas as pd
import pytest
from mock_exchange import MockBinance, MockCoinbaseExchange

from cryptoai.data.frame import EXTRA_COLUMNS, OHLCV_COLUMNS
from cryptoai.data.sources.ccxt_source import CcxtSource, rewrite_api_urls
from cryptoai.data.sources.retry import RetryPolicy, parse_retry_after
from cryptoai.errors import BadInputError, SourceError

FAST = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=5, sleep=lambda s: None)
H = pd.Timedelta(hours=1)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def fetch_all(src: CcxtSource, symbol: str, tf: str, start: str, end: str) -> list[pd.DataFrame]:
    return list(src.fetch(src.resolve_symbol(symbol), tf, ts(start), ts(end)))


def expected(mock, symbol: str, start: str, end: str) -> pd.DataFrame:
    frame = mock.frame(symbol)
    return frame[(frame.index >= ts(start)) & (frame.index < ts(end))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_paging_returns_the_mocks_candles_bar_for_bar_with_extras():
    with MockBinance(symbols=["BTC/USDT"], start="2024-01-01", end="2024-01-30") as mock:
        src = CcxtSource("binance", api_url=mock.url, retry=FAST, page_limit=100)
        pages = fetch_all(src, "BTC/USDT", "1h", "2024-01-01", "2024-01-22")
        got = pd.concat(pages)
        # 21 days of hourly bars = 504 bars, 100 per request.
        assert [len(p) for p in pages] == [100, 100, 100, 100, 100, 4]
        assert list(got.columns) == [*OHLCV_COLUMNS, *EXTRA_COLUMNS]
        pd.testing.assert_frame_equal(
            got, expected(mock, "BTC/USDT", "2024-01-01", "2024-01-22"), check_freq=False
        )
        klines = mock.requests_to("/klines")
        assert [int(r.params["limit"]) for r in klines] == [100] * 6
        starts = [int(r.params["startTime"]) for r in klines]
        step = 100 * 3_600_000
        assert starts == [int(ts("2024-01-01").timestamp() * 1000) + i * step for i in range(6)]
        assert {r.params["endTime"] for r in klines} == {
            str(int(ts("2024-01-22").timestamp() * 1000) - 1)
        }


def test_default_page_is_binances_maximum_of_1000():
    with MockBinance(symbols=["ETH/BTC"], start="2024-01-01", end="2024-03-10") as mock:
        src = CcxtSource("binance", api_url=mock.url, retry=FAST)
        assert src.page_limit == 1000
        pages = fetch_all(src, "ETHBTC", "1h", "2024-01-01", "2024-03-05")
        assert [len(p) for p in pages] == [1000, 64 * 24 - 1000]
        assert [r.params["limit"] for r in mock.requests_to("/klines")] == ["1000", "1000"]


def test_symbol_spellings_resolve_to_the_same_spot_market():
    with MockBinance() as mock:
        src = CcxtSource("binance", api_url=mock.url, retry=FAST)
        for spelling in ("BTC/USDT", "BTCUSDT", "btcusdt", "btc-usdt"):
            assert src.resolve_symbol(spelling) == "BTC/USDT"
        assert src.resolve_symbol("ETHBTC") == "ETH/BTC"
        by_id = pd.concat(src.fetch("BTCUSDT", "1h", ts("2024-01-02"), ts("2024-01-03")))
        by_pair = pd.concat(src.fetch("BTC/USDT", "1h", ts("2024-01-02"), ts("2024-01-03")))
        pd.testing.assert_frame_equal(by_id, by_pair)
        assert len(by_id) == 24


def test_binance_markets_come_from_spot_exchange_info_only():
    with MockBinance() as mock:
        CcxtSource("binance", api_url=mock.url, retry=FAST).resolve_symbol("BTC/USDT")
        assert [r.path for r in mock.requests] == ["/api/v3/exchangeInfo"]


def test_gaps_come_back_as_missing_bars_even_when_longer_than_a_page():
    gaps = [("2024-01-03 05:00", "2024-01-03 10:00"), ("2024-01-05", "2024-01-08")]
    with MockBinance(start="2024-01-01", end="2024-01-12", gaps=gaps) as mock:
        src = CcxtSource("binance", api_url=mock.url, retry=FAST, page_limit=24)
        got = pd.concat(fetch_all(src, "BTC/USDT", "1h", "2024-01-01", "2024-01-10"))
    assert len(got) == 9 * 24 - 5 - 3 * 24
    assert not got.index.isin(
        pd.date_range("2024-01-03 05:00", periods=5, freq="h", tz="UTC")
    ).any()
    assert got.loc[ts("2024-01-04 23:00") :].index[:2].tolist() == [
        ts("2024-01-04 23:00"),
        ts("2024-01-08"),
    ]
    pd.testing.assert_frame_equal(
        got, expected(mock, "BTC/USDT", "2024-01-01", "2024-01-10"), check_freq=False
    )


def test_the_bar_in_progress_is_never_returned():
    now = pd.Timestamp.now(tz="UTC")
    with MockBinance(start=now.floor("h") - 6 * H, end=now + 3 * H) as mock:
        src = CcxtSource("binance", api_url=mock.url, retry=FAST)
        before = pd.Timestamp.now(tz="UTC").floor("h")
        got = pd.concat(src.fetch("BTC/USDT", "1h", now.floor("h") - 6 * H, now + 3 * H))
        after = pd.Timestamp.now(tz="UTC").floor("h")
        # the mock serves the partial bar (it has opened) ...
        assert before in mock.frame("BTC/USDT").index
    # ... but only closed bars come back
    assert got.index[-1] in {before - H, after - H}
    assert (got.index + H <= pd.Timestamp.now(tz="UTC")).all()


def test_429_waits_as_long_as_retry_after_says():
    waits: list[float] = []  # the policy's sleep, recorded instead of slept
    policy = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=5, sleep=waits.append)
    with MockBinance() as mock:
        src = CcxtSource("binance", api_url=mock.url, retry=policy)
        src.resolve_symbol("BTC/USDT")
        mock.fail_next(429, times=2, headers={"Retry-After": "3"}, path="/api/v3/klines")
        got = pd.concat(src.fetch("BTC/USDT", "1h", ts("2024-01-01"), ts("2024-01-02")))
        klines = mock.requests_to("/klines")
    assert [r.status for r in klines] == [429, 429, 200]
    assert waits == [3.0, 3.0]  # the server's 3 s, not the backoff's 0.01 s and 0.02 s
    assert len(got) == 24


def test_418_and_5xx_are_retried_then_succeed():
    with MockBinance() as mock:
        src = CcxtSource("binance", api_url=mock.url, retry=FAST)
        mock.fail_next(503, path="/api/v3/exchangeInfo")
        mock.fail_next(418, headers={"Retry-After": "0"}, path="/api/v3/klines")
        mock.fail_next(502, body="<html>bad gateway</html>", path="/api/v3/klines")
        mock.fail_next(500, path="/api/v3/klines")
        got = pd.concat(fetch_all(src, "BTC/USDT", "1h", "2024-01-01", "2024-01-03"))
        statuses = [r.status for r in mock.requests]
    assert statuses == [503, 200, 418, 502, 500, 200]
    pd.testing.assert_frame_equal(
        got, expected(mock, "BTC/USDT", "2024-01-01", "2024-01-03"), check_freq=False
    )


def test_persistent_5xx_ends_in_a_one_line_source_error():
    with MockBinance() as mock:
        src = CcxtSource("binance", api_url=mock.url, retry=FAST)
        src.resolve_symbol("BTC/USDT")
        mock.fail_always(500, path="/api/v3/klines")
        with pytest.raises(SourceError) as err:
            list(src.fetch("BTC/USDT", "1h", ts("2024-01-01"), ts("2024-01-02")))
        assert len(mock.requests_to("/klines")) == FAST.max_retries + 1
    message = str(err.value)
    assert "\n" not in message
    assert mock.url in message and "HTTP 500" in message and "retry" in message


def test_retry_after_beyond_the_policy_limit_gives_up_at_once():
    waits: list[float] = []
    policy = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=5, sleep=waits.append)
    with MockBinance() as mock:
        src = CcxtSource("binance", api_url=mock.url, retry=policy)
        mock.fail_next(418, headers={"Retry-After": "3600"})
        with pytest.raises(SourceError, match="3600 s"):
            src.resolve_symbol("BTC/USDT")
        assert waits == []  # gave up at once, without waiting
        assert len(mock.requests) == 1


def test_unreachable_api_is_a_source_error_naming_the_host():
    url = f"http://127.0.0.1:{free_port()}"
    src = CcxtSource("binance", api_url=url, retry=RetryPolicy(max_retries=1, base_delay_s=0.01))
    with pytest.raises(SourceError) as err:
        src.resolve_symbol("BTC/USDT")
    message = str(err.value)
    assert url in message and "--api-url" in message and "\n" not in message


def test_unknown_symbol_suggests_close_matches():
    with MockBinance() as mock:
        src = CcxtSource("binance", api_url=mock.url, retry=FAST)
        with pytest.raises(BadInputError, match=r"unknown symbol 'BTC/USDX'.*BTC/USDT"):
            src.resolve_symbol("BTC/USDX")


def test_exchange_rejecting_a_symbol_is_bad_input():
    with MockBinance() as mock:
        src = CcxtSource("binance", api_url=mock.url, retry=FAST)
        src.resolve_symbol("BTC/USDT")
        mock.fail_next(400, body={"code": -1121, "msg": "Invalid symbol."}, path="/api/v3/klines")
        with pytest.raises(BadInputError, match="Invalid symbol"):
            list(src.fetch("BTC/USDT", "1h", ts("2024-01-01"), ts("2024-01-02")))
        assert len(mock.requests_to("/klines")) == 1  # a 400 is not retried


def test_unknown_timeframe_lists_the_exchanges_timeframes():
    with MockBinance() as mock:
        src = CcxtSource("binance", api_url=mock.url, retry=FAST)
        with pytest.raises(BadInputError, match=r"no '7m' candles: use one of .*1m.*1h.*1d"):
            list(src.fetch("BTC/USDT", "7m", ts("2024-01-01"), ts("2024-01-02")))
        assert not mock.requests_to("/klines")


def test_unknown_exchange_says_how_to_list_them():
    with pytest.raises(BadInputError) as err:
        CcxtSource("binanse")
    message = str(err.value)
    assert "binance" in message and "ccxt.exchanges" in message


def test_api_url_must_be_http():
    with pytest.raises(BadInputError, match="not an http"):
        CcxtSource("binance", api_url="ftp://example.com")


def test_rewrite_api_urls_keeps_paths_and_leaves_websockets_alone():
    urls = {
        "public": "https://api.binance.com/api/v3",
        "nested": {"rest": "https://api.{hostname}/v5?x=1"},
        "ws": "wss://stream.binance.com/ws",
    }
    assert rewrite_api_urls(urls, "http://127.0.0.1:8080/proxy") == {
        "public": "http://127.0.0.1:8080/proxy/api/v3",
        "nested": {"rest": "http://127.0.0.1:8080/proxy/v5?x=1"},
        "ws": "wss://stream.binance.com/ws",
    }


def test_generic_exchange_requests_go_to_the_api_url():
    with MockBinance() as mock:  # it answers kraken's paths with 404
        src = CcxtSource("kraken", api_url=mock.url, retry=FAST)
        with pytest.raises(SourceError) as err:
            src.resolve_symbol("BTC/USD")
    assert mock.requests and all(r.path.startswith("/0/public/") for r in mock.requests)
    assert mock.url in str(err.value) and "HTTP 404" in str(err.value)


def test_generic_exchange_pages_with_fetch_ohlcv_across_gaps():
    gaps = [("2024-01-10", "2024-01-25")]  # longer than a 300-bar window
    with MockCoinbaseExchange(start="2024-01-01", end="2024-02-10", gaps=gaps) as mock:
        src = CcxtSource("coinbaseexchange", api_url=mock.url, retry=FAST)
        assert src.page_limit == 300
        assert src.resolve_symbol("BTC-USD") == "BTC/USD"
        got = pd.concat(fetch_all(src, "BTC/USD", "1h", "2024-01-01", "2024-02-05"))
        want = expected(mock, "BTC/USD", "2024-01-01", "2024-02-05")[list(OHLCV_COLUMNS)]
        candles = mock.requests_to("/candles")
    pd.testing.assert_frame_equal(got, want, check_freq=False)
    assert list(got.columns) == list(OHLCV_COLUMNS)
    assert len(got) == (35 - 15) * 24
    assert all(r.status == 200 for r in candles) and len(candles) >= 3


def test_retry_policy_backoff_and_retry_after_parsing():
    policy = RetryPolicy(base_delay_s=1, max_delay_s=10)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 10]
    assert policy.delay(1, retry_after=3) == 3
    assert RetryPolicy(honour_retry_after=False).delay(1, retry_after=30) == 1
    assert parse_retry_after("120") == 120
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    in_a_minute = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 55 <= parse_retry_after(in_a_minute) <= 61
