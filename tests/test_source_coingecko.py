"""CoinGeckoSource over real HTTP against ``MockCoinGecko``."""

from __future__ import annotations

import socket

import pandas as pd
import pytest
from mock_exchange import MockCoinGecko

from cryptoai.data.frame import OHLCV_COLUMNS
from cryptoai.data.sources.coingecko import PRO_URL, PUBLIC_URL, CallLimiter, CoinGeckoSource
from cryptoai.data.sources.retry import RetryPolicy
from cryptoai.errors import BadInputError, SourceError

FAST = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=5)
DAY = pd.Timedelta(days=1)


@pytest.fixture(autouse=True)
def no_keys_from_the_environment(monkeypatch):
    monkeypatch.delenv("COINGECKO_API_KEY", raising=False)
    monkeypatch.delenv("COINGECKO_PRO_API_KEY", raising=False)


def source(mock: MockCoinGecko, **kw) -> CoinGeckoSource:
    return CoinGeckoSource(api_url=mock.url, retry=FAST, calls_per_minute=0, **kw)


def now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def test_symbols_map_to_the_highest_ranked_coin_and_a_vs_currency():
    with MockCoinGecko() as mock:
        src = source(mock)
        assert src.resolve_symbol("BTC/USD") == "BTC/USD"
        assert src.resolve_symbol("bitcoin/eur") == "BTC/EUR"
        list(src.fetch("BTC/USD", "4h", now() - 3 * DAY, now()))
        # "btc" is also the ticker of a minor coin; bitcoin (rank 1) must be the one fetched
        assert mock.requests_to("/ohlc")[0].path == "/api/v3/coins/bitcoin/ohlc"


def test_4h_candles_match_the_mock_and_are_stamped_with_open_times():
    start = (now() - 10 * DAY).floor("4h")
    with MockCoinGecko() as mock:
        pages = list(source(mock).fetch("ETH/USD", "4h", start, now() + DAY))
        served = mock.candles("ethereum", "usd", "4h")  # stamped with close times
        path = mock.path("ethereum", "usd")
        ohlc_params = mock.requests_to("/ohlc")[0].params
    assert len(pages) == 1
    got = pages[0]
    assert ohlc_params == {"vs_currency": "usd", "days": "14"}
    assert list(got.columns) == list(OHLCV_COLUMNS)
    want = served.copy()
    want.index = want.index - pd.Timedelta("4h")
    want = want[(want.index >= start) & (want.index + pd.Timedelta("4h") <= now())]
    assert got.index[0] == start and len(got) >= 10 * 6 - 1
    pd.testing.assert_frame_equal(
        got[["open", "high", "low", "close"]], want, check_freq=False, check_names=False
    )
    # volume: CoinGecko's rolling 24 h quote volume at the candle close, in base units
    for t in got.index[[0, len(got) // 2, -1]]:
        close_t = t + pd.Timedelta("4h")
        window = path[(path.index >= close_t - DAY) & (path.index < close_t)]
        assert got.loc[t, "volume"] == pytest.approx(
            window["volume_quote"].sum() / got.loc[t, "close"]
        )


def test_the_candle_in_progress_is_dropped():
    with MockCoinGecko() as mock:
        got = next(source(mock).fetch("BTC/USD", "30m", now() - pd.Timedelta(hours=6), now() + DAY))
        last_served_close = mock.candles("bitcoin", "usd", "30min").index[-1]
    assert last_served_close > now()  # the mock did send the unfinished candle
    assert got.index[-1] + pd.Timedelta("30min") <= now()
    assert len(got) >= 11


def test_unknown_coin_and_quote_are_bad_input():
    with MockCoinGecko() as mock:
        src = source(mock)
        with pytest.raises(BadInputError, match="no coin 'XYZ'"):
            src.resolve_symbol("XYZ/USD")
        with pytest.raises(BadInputError, match=r"no quote currency 'USDT'.*usd"):
            src.resolve_symbol("BTC/USDT")


def test_timeframes_and_ranges_coingecko_cannot_serve_are_bad_input():
    with MockCoinGecko() as mock:
        src = source(mock)
        with pytest.raises(BadInputError, match=r"no '1h' candles.*COINGECKO_PRO_API_KEY"):
            list(src.fetch("BTC/USD", "1h", now() - 2 * DAY, now()))
        with pytest.raises(BadInputError, match="4h candles only for the last 30 days"):
            list(src.fetch("BTC/USD", "4h", now() - 60 * DAY, now()))
        with pytest.raises(BadInputError, match="4d candles only for the last 365 days"):
            list(src.fetch("BTC/USD", "4d", now() - 380 * DAY, now()))
        assert not mock.requests_to("/ohlc")


def test_rate_limits_and_server_errors_are_retried():
    with MockCoinGecko() as mock:
        src = source(mock)
        mock.fail_next(429, times=2, path="/api/v3/coins/")
        mock.fail_next(503, path="/api/v3/coins/")
        got = next(src.fetch("BTC/USD", "4h", now() - 5 * DAY, now()))
        statuses = [r.status for r in mock.requests if r.path.startswith("/api/v3/coins/")]
    assert statuses == [429, 429, 503, 200, 200]
    assert len(got) >= 5 * 6 - 2


def test_persistent_errors_and_unreachable_api_are_source_errors():
    with MockCoinGecko() as mock:
        mock.fail_always(500)
        with pytest.raises(SourceError) as err:
            source(mock).resolve_symbol("BTC/USD")
        assert len(mock.requests) == FAST.max_retries + 1
    assert mock.url in str(err.value) and "HTTP 500" in str(err.value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceError, match=f"cannot reach CoinGecko at http://127.0.0.1:{port}"):
        CoinGeckoSource(
            api_url=f"http://127.0.0.1:{port}", retry=RetryPolicy(1, 0.01), calls_per_minute=0
        ).resolve_symbol("BTC/USD")


def test_demo_key_from_the_environment_is_sent_in_its_header(monkeypatch):
    monkeypatch.setenv("COINGECKO_API_KEY", "demo-123")
    with MockCoinGecko(plan="demo", api_key="demo-123") as mock:
        src = source(mock)
        assert src.plan == "demo"
        next(src.fetch("BTC/USD", "4h", now() - 2 * DAY, now()))
    assert mock.requests and all(
        r.headers.get("x-cg-demo-api-key") == "demo-123" for r in mock.requests
    )
    assert all(r.status == 200 for r in mock.requests)


def test_wrong_key_is_a_source_error_naming_the_variable():
    with MockCoinGecko(plan="demo", api_key="right") as mock:
        with pytest.raises(SourceError, match=r"HTTP 401.*API Key Missing.*COINGECKO_API_KEY"):
            source(mock, api_key="wrong").resolve_symbol("BTC/USD")
        assert len(mock.requests) == 1  # a 401 is not retried


def test_pro_key_uses_pro_header_and_unlocks_hourly_candles(monkeypatch):
    monkeypatch.setenv("COINGECKO_PRO_API_KEY", "pro-456")
    assert CoinGeckoSource().base_url == PRO_URL + "/api/v3"
    with MockCoinGecko(plan="pro", api_key="pro-456") as mock:
        src = source(mock)
        got = next(src.fetch("ETH/USD", "1h", now() - 2 * DAY, now()))
        served = mock.candles("ethereum", "usd", "1h")
        ohlc = mock.requests_to("/ohlc")[0]
    assert ohlc.params == {"vs_currency": "usd", "days": "7", "interval": "hourly"}
    assert ohlc.headers.get("x-cg-pro-api-key") == "pro-456"
    assert (got.index[1:] - got.index[:-1] == pd.Timedelta("1h")).all()
    assert got["close"].iloc[-1] == served.loc[got.index[-1] + pd.Timedelta("1h"), "close"]


def test_default_is_the_keyless_public_api():
    src = CoinGeckoSource()
    assert src.plan == "public" and src.base_url == PUBLIC_URL + "/api/v3"
    with pytest.raises(BadInputError, match="not an http"):
        CoinGeckoSource(api_url="localhost:8000")


class FakeClock:
    """Time that moves only when the limiter sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now, self.sleeps = 100.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_call_limiter_lets_a_burst_through_then_spreads_calls():
    clock = FakeClock()
    limiter = CallLimiter(limit=3, window_s=60.0, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(5):
        limiter.wait()
        stamps.append(clock.now - 100.0)
        clock.now += 1.0  # each call takes a second
    # three calls at t = 0, 1, 2 go at once; the fourth (at 3) waits until the first left the
    # window (t = 60), the fifth until the second did (t = 61)
    assert stamps == [0.0, 1.0, 2.0, 60.0, 61.0]
    assert clock.sleeps == [57.0]  # the fifth found the window free again: no wait
