"""`cryptoai fetch` against a loopback mock Binance over real HTTP: paging, resume, failures."""

import pandas as pd
from helpers import snapshot
from mock_exchange import MockBinance

from cryptoai.cli import main
from cryptoai.data.store import RawStore

START, END = "2024-01-01", "2024-03-01"


def _fetch(mock, root, start, end, *extra):
    return main(
        [
            "fetch",
            "--source",
            "binance",
            "--api-url",
            mock.url,
            "--symbol",
            "BTCUSDT",
            "--timeframe",
            "1h",
            "--start",
            start,
            "--end",
            end,
            "--out",
            str(root),
            "--no-progress",
            "--retries",
            "1",
            "--retry-delay",
            "0",  # no real waits: the retry count, not the clock, is under test
            *extra,
        ]
    )


def test_fetch_resume_and_persistent_5xx_leave_store_whole(tmp_path, capsys):
    root = tmp_path / "raw"
    gap = ("2024-01-10 05:00", "2024-01-10 09:00")
    with MockBinance(
        symbols=["BTC/USDT"], start=START, end=END, timeframe="1h", gaps=[gap], seed=3
    ) as mock:
        assert _fetch(mock, root, START, "2024-01-20") == 0
        first_pages = mock.requests_to("/klines")
        assert len(first_pages) == 1  # 19 days of 1h bars fit in one 1000-bar page
        before = snapshot(root)

        # the exchange breaks: one-line error, non-zero exit, store byte-identical
        mock.fail_always(500, path="/api/v3/klines")
        capsys.readouterr()
        assert _fetch(mock, root, START, END) != 0
        err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
        assert len(err) == 1 and "127.0.0.1" in err[0] and "500" in err[0]
        assert snapshot(root) == before

        # it recovers: only the missing bars are requested, gaps stay gaps
        mock.clear_failures()
        n_before = len(mock.requests_to("/klines"))
        assert _fetch(mock, root, START, END) == 0
        resumed = mock.requests_to("/klines")[n_before:]
        assert int(resumed[0].params["startTime"]) == int(
            pd.Timestamp("2024-01-20", tz="UTC").value // 10**6
        )
        assert len(resumed) == 1  # Jan 20 .. Mar 1 is under 1000 bars

        stored = RawStore(root).load("binance", "BTC/USDT", "1h")
        expected = mock.frame("BTC/USDT")
        expected = expected[(expected.index >= START) & (expected.index < END)]
        pd.testing.assert_frame_equal(stored, expected[stored.columns], check_freq=False)
        assert pd.Timestamp("2024-01-10 06:00", tz="UTC") not in stored.index
        assert {"quote_volume", "trades", "taker_buy_base", "taker_buy_quote"} <= set(
            stored.columns
        )

        # the gap is known to be empty: a third run asks the exchange for nothing
        n_before = len(mock.requests_to("/klines"))
        assert _fetch(mock, root, START, END) == 0
        assert len(mock.requests_to("/klines")) == n_before


def test_unknown_symbol_on_live_exchange(tmp_path, capsys):
    root = tmp_path / "raw"
    with MockBinance(symbols=["BTC/USDT"], start=START, end="2024-01-05", timeframe="1h") as mock:
        rc = main(
            [
                "fetch",
                "--source",
                "binance",
                "--api-url",
                mock.url,
                "--symbol",
                "DOGE/XYZ",
                "--timeframe",
                "1h",
                "--start",
                START,
                "--end",
                "2024-01-05",
                "--out",
                str(root),
            ]
        )
    assert rc != 0
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert len(err) == 1 and "DOGE/XYZ" in err[0]
    assert not root.exists() or not any(root.rglob("*.parquet"))
