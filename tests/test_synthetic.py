"""The offline synthetic source: determinism, range independence, invariants, stylized facts."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cryptoai.data.frame import EXTRA_COLUMNS, OHLCV_COLUMNS
from cryptoai.data.sources.base import Source
from cryptoai.data.sources.synthetic import ANCHOR, SyntheticSource, _daily_layer, synthetic_ohlcv
from cryptoai.data.timeframes import bar_grid
from cryptoai.data.validate import check_ohlcv
from cryptoai.errors import BadInputError

UTC = "UTC"


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


def _fetch(src: SyntheticSource, symbol: str, tf: str, start: str, end: str) -> pd.DataFrame:
    pages = list(src.fetch(symbol, tf, _ts(start), _ts(end)))
    return pd.concat(pages) if pages else pd.DataFrame()


@pytest.fixture(scope="module")
def btc_1h() -> pd.DataFrame:
    return synthetic_ohlcv("BTC/USDT", "1h", "2023-01-01", "2025-01-01", seed=42)


def test_is_a_source_with_canonical_symbols():
    src = SyntheticSource()
    assert isinstance(src, Source) and src.exchange == "synthetic"
    assert src.resolve_symbol("btcusdt") == "BTC/USDT"
    assert src.resolve_symbol("sol-eur") == "SOL/EUR"
    with pytest.raises(BadInputError, match="BASE/QUOTE"):
        src.resolve_symbol("nonsense")


def test_same_seed_same_candles_other_seed_or_symbol_differs():
    a = _fetch(SyntheticSource(7), "BTC/USDT", "1h", "2024-03-01", "2024-03-05")
    b = _fetch(SyntheticSource(7), "BTC/USDT", "1h", "2024-03-01", "2024-03-05")
    pd.testing.assert_frame_equal(a, b)
    other_seed = _fetch(SyntheticSource(8), "BTC/USDT", "1h", "2024-03-01", "2024-03-05")
    other_symbol = _fetch(SyntheticSource(7), "ETH/USDT", "1h", "2024-03-01", "2024-03-05")
    for other in (other_seed, other_symbol):
        assert not np.allclose(a["close"].pct_change(), other["close"].pct_change(), equal_nan=True)
    corr = np.corrcoef(np.diff(np.log(a["close"])), np.diff(np.log(other_symbol["close"])))[0, 1]
    assert abs(corr) < 0.3


def test_candles_do_not_depend_on_process_hash_salt():
    code = (
        "from cryptoai.data.sources.synthetic import synthetic_ohlcv;"
        "print(repr(float(synthetic_ohlcv('ETH/BTC', '4h', '2024-01-01', '2024-01-03')"
        "['close'].iloc[-1])))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    here = synthetic_ohlcv("ETH/BTC", "4h", "2024-01-01", "2024-01-03")["close"].iloc[-1]
    assert float(out.stdout.strip()) == here


@pytest.mark.parametrize(
    ("tf", "a", "b", "c"),
    [
        ("1h", "2024-01-01", "2024-01-17 05:30", "2024-02-01"),
        ("1m", "2024-05-01", "2024-05-30 13:07", "2024-06-12"),  # > one page of 50k bars
        ("1d", "2018-01-01", "2020-06-15", "2021-01-01"),
        ("1w", "2016-01-01", "2019-01-01", "2020-01-01"),
    ],
)
def test_range_independent_pieces_equal_the_whole(tf, a, b, c):
    src = SyntheticSource(42)
    whole = _fetch(src, "BTC/USDT", tf, a, c)
    pieces = pd.concat([_fetch(src, "BTC/USDT", tf, a, b), _fetch(src, "BTC/USDT", tf, b, c)])
    pd.testing.assert_frame_equal(whole, pieces)
    assert whole.index.equals(bar_grid(_ts(a), _ts(c), tf).as_unit(whole.index.unit))


def test_timeframe_spellings_give_the_same_bars():
    a = synthetic_ohlcv("BTC/USDT", "1h", "2024-01-01", "2024-01-02")
    pd.testing.assert_frame_equal(a, synthetic_ohlcv("BTC/USDT", "60m", "2024-01-01", "2024-01-02"))


def test_pages_are_bounded_and_in_order():
    pages = list(SyntheticSource().fetch("BTC/USDT", "1m", _ts("2015-01-01"), _ts("2015-03-02")))
    assert len(pages) == 2 and len(pages[0]) == 50_000
    assert pages[0].index[-1] < pages[1].index[0]
    assert sum(map(len, pages)) == 60 * 24 * 60


def test_nothing_before_the_anchor_and_guard_on_huge_ranges():
    df = _fetch(SyntheticSource(), "BTC/USDT", "1h", "2014-12-31", "2015-01-01 03:00")
    assert list(df.index) == [ANCHOR, ANCHOR + pd.Timedelta("1h"), ANCHOR + pd.Timedelta("2h")]
    assert _fetch(SyntheticSource(), "BTC/USDT", "1h", "2010-01-01", "2011-01-01").empty
    with pytest.raises(BadInputError, match="--timeframe"):
        _fetch(SyntheticSource(), "BTC/USDT", "1m", "2099-01-01", "2100-01-01")


@pytest.mark.parametrize(
    ("symbol", "tf", "start", "end"),
    [
        ("BTC/USDT", "1m", "2015-02-01", "2015-02-08"),
        ("ETH/USDT", "5m", "2022-01-01", "2022-03-01"),
        ("DOGE/USDT", "15m", "2021-01-01", "2021-03-01"),
        ("SOL/EUR", "4h", "2020-01-01", "2022-01-01"),
        ("ETH/BTC", "1d", "2016-01-01", "2024-01-01"),
        ("XYZ/USDT", "1w", "2015-01-01", "2024-01-01"),
    ],
)
def test_candles_satisfy_the_contract(symbol, tf, start, end):
    df = synthetic_ohlcv(symbol, tf, start, end)
    assert list(df.columns) == [*OHLCV_COLUMNS, *EXTRA_COLUMNS]
    check_ohlcv(df, name=symbol)  # the contract, independently checked
    o, h, low, c = (df[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (low <= np.minimum(o, c)).all() and (h >= np.maximum(o, c)).all() and (low > 0).all()
    assert (df[["volume", "quote_volume", "trades"]].to_numpy() > 0).all()
    np.testing.assert_allclose(o[1:], c[:-1], rtol=1e-12)  # 24/7: open = previous close
    vwap = df["quote_volume"] / df["volume"]
    assert ((vwap >= df["low"] * (1 - 1e-12)) & (vwap <= df["high"] * (1 + 1e-12))).all()
    assert (df["taker_buy_base"] <= df["volume"]).all()
    assert (df["taker_buy_quote"] <= df["quote_volume"]).all()
    assert (df["trades"] == df["trades"].round()).all()


@pytest.mark.parametrize(
    ("symbol", "low", "high"),
    [
        ("BTC/USDT", 1e4, 1e5),
        ("ETH/USDT", 1e2, 1e4),
        ("ADA/USDT", 1e-2, 1e1),
        ("ABC/USDT", 1e-2, 1e3),
    ],
)
def test_price_levels_are_plausible(symbol, low, high):
    close = synthetic_ohlcv(symbol, "1d", "2017-01-01", "2025-01-01")["close"]
    assert low < close.median() < high


def test_fat_tails(btc_1h):
    r = np.diff(np.log(btc_1h["close"].to_numpy()))
    # a Gaussian sample of this size has kurtosis 3 +- 0.04
    assert stats.kurtosis(r, fisher=False) > 4.0
    assert stats.jarque_bera(r).pvalue < 1e-10


def test_volatility_clusters(btc_1h):
    a = np.abs(np.diff(np.log(btc_1h["close"].to_numpy())))
    a = a - a.mean()
    acf = [float(a[k:] @ a[:-k] / (a @ a)) for k in range(1, 11)]
    assert min(acf) > 0.05, acf  # white noise would give +-0.015 (2 standard errors)
    r = np.diff(np.log(btc_1h["close"].to_numpy()))
    assert abs(np.corrcoef(r[1:], r[:-1])[0, 1]) < 0.05  # returns themselves barely predictable


def test_intraday_volume_profile_is_not_flat(btc_1h):
    log_volume = np.log(btc_1h["volume"])
    by_hour = [log_volume[btc_1h.index.hour == h].to_numpy() for h in range(24)]
    assert stats.f_oneway(*by_hour).pvalue < 1e-10
    means = btc_1h["volume"].groupby(btc_1h.index.hour).mean()
    assert means.max() / means.min() > 1.3
    weekend = btc_1h.index.dayofweek >= 5
    assert btc_1h["volume"][weekend].mean() < btc_1h["volume"][~weekend].mean()


def test_volume_rises_with_volatility(btc_1h):
    move = np.abs(np.log(btc_1h["close"] / btc_1h["open"]))
    rho = stats.spearmanr(move, btc_1h["volume"]).statistic
    assert rho > 0.2


def test_regimes_persist_for_weeks():
    mu, _, _ = _daily_layer(123456789, 3000, 0.6)
    switches = np.count_nonzero(np.diff(mu))
    assert len(np.unique(mu)) == 3  # bull, bear and sideways all occur
    assert 3000 / (switches + 1) > 21  # mean regime length beyond three weeks


def test_two_years_hourly_have_every_bar():
    # Speed is measured in benchmarks/, not asserted here: a loaded machine would fail it.
    df = synthetic_ohlcv("LINK/USDT", "1h", "2023-01-01", "2025-01-01")
    assert len(df) == 731 * 24
    assert (df.index[1:] - df.index[:-1] == pd.Timedelta(hours=1)).all()


def test_resuming_from_a_checkpoint_gives_identical_bars(monkeypatch):
    from cryptoai.data.sources import synthetic

    args = ("ADA/USDT", "1m", "2015-08-01", "2015-08-02")  # ~300k bars after the anchor
    monkeypatch.setattr(synthetic, "CHECKPOINT_BARS", 1 << 40)  # never checkpoint: full rerun
    synthetic._checkpoint_store.clear()
    straight = synthetic_ohlcv(*args)
    monkeypatch.setattr(synthetic, "CHECKPOINT_BARS", 1 << 16)
    synthetic._checkpoint_store.clear()
    first = synthetic_ohlcv(*args)  # records checkpoints on the way
    assert len(synthetic._checkpoint_store[(42, "ADA/USDT", 60 * 10**9)]) >= 4
    again = synthetic_ohlcv(*args)  # resumes from the last one
    pd.testing.assert_frame_equal(straight, first)
    pd.testing.assert_frame_equal(straight, again)


def test_other_seeds_are_stored_apart(tmp_path):
    from cryptoai.data.fetch import fetch_to_store
    from cryptoai.data.store import RawStore

    store = RawStore(tmp_path)
    for seed in (42, 7):
        fetch_to_store(
            SyntheticSource(seed),
            store,
            "BTC/USDT",
            "1h",
            "2024-01-01",
            "2024-01-02",
            progress=False,
        )
    a = store.load("synthetic", "BTC/USDT", "1h")
    b = store.load("synthetic-seed7", "BTC/USDT", "1h")
    assert len(a) == len(b) == 24 and not np.allclose(a["close"], b["close"])
