"""Indicator kernels against the `ta` library and against hand-written formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import ta
from helpers import ohlcv_frame
from numpy.lib.stride_tricks import sliding_window_view

from cryptoai.features import indicators as ind

N = 2500  # > 2 resynchronisation blocks of the rolling kernels


def random_walk(n: int = N, seed: int = 11) -> pd.DataFrame:
    return ohlcv_frame(n, seed=seed, start="2023-01-01")


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return random_walk()


def after(series, warmup: int) -> np.ndarray:
    return np.asarray(series, dtype=float)[warmup:]


def assert_warmup_nan(series, warmup: int) -> None:
    values = np.asarray(series, dtype=float)
    assert np.isnan(values[:warmup]).all()
    assert not np.isnan(values[warmup:]).any()


@pytest.mark.parametrize("window", [1, 5, 20, 200])
def test_sma_equals_ta_and_windowed_mean(df, window):
    ours = ind.sma(df["close"], window)
    assert_warmup_nan(ours, window - 1)
    ref = ta.trend.sma_indicator(df["close"], window)
    np.testing.assert_allclose(after(ours, window - 1), after(ref, window - 1), rtol=1e-12)
    naive = sliding_window_view(df["close"].to_numpy(), window).mean(axis=1)
    np.testing.assert_allclose(after(ours, window - 1), naive, rtol=1e-12)
    assert ours.index.equals(df.index)


@pytest.mark.parametrize("window", [2, 12, 26])
def test_ema_equals_ta_and_recursion(df, window):
    ours = ind.ema(df["close"], window)
    assert_warmup_nan(ours, window - 1)
    np.testing.assert_allclose(
        after(ours, window - 1),
        after(ta.trend.ema_indicator(df["close"], window), window - 1),
        rtol=1e-12,
    )
    alpha, c = 2 / (window + 1), df["close"].to_numpy()
    rec = [c[0]]
    for x in c[1:]:
        rec.append((1 - alpha) * rec[-1] + alpha * x)
    np.testing.assert_allclose(after(ours, window - 1), rec[window - 1 :], rtol=1e-12)


def wilder_rsi(close: np.ndarray, window: int) -> np.ndarray:
    """RSI by an explicit loop, with `ta`'s convention that bar 0 is a zero change."""
    diff = np.diff(close, prepend=close[0])
    gain, loss = np.maximum(diff, 0), np.maximum(-diff, 0)
    avg_gain, avg_loss, out = gain[0], loss[0], np.full(close.size, np.nan)
    for i in range(close.size):
        if i:
            avg_gain = avg_gain + (gain[i] - avg_gain) / window
            avg_loss = avg_loss + (loss[i] - avg_loss) / window
        if i >= window - 1:
            out[i] = 100.0 if avg_loss == 0 else 100 - 100 / (1 + avg_gain / avg_loss)
    return out


@pytest.mark.parametrize("window", [3, 14])
def test_rsi_equals_ta_and_wilder_loop(df, window):
    ours = ind.rsi(df["close"], window)
    assert_warmup_nan(ours, window - 1)
    ref = ta.momentum.rsi(df["close"], window)
    np.testing.assert_allclose(after(ours, window - 1), after(ref, window - 1), rtol=1e-10)
    loop = wilder_rsi(df["close"].to_numpy(), window)
    np.testing.assert_allclose(after(ours, window - 1), loop[window - 1 :], rtol=1e-9)
    assert ((ours.dropna() >= 0) & (ours.dropna() <= 100)).all()


def test_rsi_of_rising_prices_is_100():
    close = pd.Series(np.arange(1.0, 40.0))
    assert (ind.rsi(close, 14).dropna() == 100.0).all()


def test_macd_equals_ta(df):
    ours = ind.macd(df["close"], 12, 26, 9)
    ref = ta.trend.MACD(df["close"], window_slow=26, window_fast=12, window_sign=9)
    assert_warmup_nan(ours["macd"], 25)
    assert_warmup_nan(ours["signal"], 25 + 8)
    np.testing.assert_allclose(after(ours["macd"], 25), after(ref.macd(), 25), rtol=1e-10)
    np.testing.assert_allclose(after(ours["signal"], 33), after(ref.macd_signal(), 33), rtol=1e-10)
    np.testing.assert_allclose(
        after(ours["diff"], 33), after(ref.macd_diff(), 33), rtol=1e-9, atol=1e-9
    )
    # the line is the difference of the two EMAs
    line = ind.ema(df["close"], 12) - ind.ema(df["close"], 26)
    np.testing.assert_allclose(after(ours["macd"], 25), after(line, 25), rtol=1e-12)


def test_bollinger_equals_two_pass_std_and_ta(df):
    window, dev = 20, 2.0
    ours = ind.bollinger(df["close"], window, dev)
    c = df["close"].to_numpy()
    windows = sliding_window_view(c, window)
    mean, std = windows.mean(axis=1), windows.std(axis=1)  # exact two-pass, population std
    w = window - 1
    np.testing.assert_allclose(after(ours["mavg"], w), mean, rtol=1e-12)
    np.testing.assert_allclose(after(ours["hband"], w), mean + dev * std, rtol=1e-12)
    np.testing.assert_allclose(after(ours["lband"], w), mean - dev * std, rtol=1e-12)
    np.testing.assert_allclose(
        after(ours["pband"], w), (c[w:] - mean + dev * std) / (2 * dev * std), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(after(ours["wband"], w), 2 * dev * std / mean * 100, rtol=1e-9)
    # `ta` (pandas rolling std) is itself only accurate to ~1e-8 relative
    ref = ta.volatility.BollingerBands(df["close"], window, dev)
    for name in ("mavg", "hband", "lband", "pband", "wband"):
        expected = getattr(ref, f"bollinger_{name}")()
        np.testing.assert_allclose(after(ours[name], w), after(expected, w), rtol=1e-6, atol=1e-7)


def test_bollinger_pband_of_flat_window_is_nan():
    close = pd.Series([5.0] * 25 + [6.0])
    out = ind.bollinger(close, 20, 2.0)
    assert np.isnan(out["pband"].iloc[19:25]).all()
    assert (out["wband"].iloc[19:25] == 0).all()
    assert out["pband"].iloc[25] > 1  # a jump above a flat band


@pytest.mark.parametrize("window", [1, 14])
def test_atr_equals_ta_after_warmup(df, window):
    part = df.iloc[:600]
    ours = ind.atr(part["high"], part["low"], part["close"], window)
    ref = ta.volatility.average_true_range(part["high"], part["low"], part["close"], window)
    assert_warmup_nan(ours, window - 1)
    np.testing.assert_allclose(after(ours, window - 1), after(ref, window - 1), rtol=1e-12)


def test_atr_by_hand():
    high = pd.Series([10.0, 12.0, 11.0, 15.0])
    low = pd.Series([8.0, 9.0, 9.0, 12.0])
    close = pd.Series([9.0, 11.0, 10.0, 14.0])
    # true ranges: 2 (h-l), 3 (12-9), 2 (11-9), 5 (15-10)
    out = ind.atr(high, low, close, 2)
    expected = [np.nan, 2.5, (2.5 * 1 + 2) / 2, (2.25 * 1 + 5) / 2]
    np.testing.assert_allclose(out.to_numpy(), expected)


def test_obv_equals_ta_and_by_hand(df):
    ours = ind.obv(df["close"], df["volume"])
    np.testing.assert_allclose(
        ours, ta.volume.on_balance_volume(df["close"], df["volume"]), rtol=1e-12
    )
    close = pd.Series([1.0, 2.0, 2.0, 1.0, 3.0])
    volume = pd.Series([10.0, 20.0, 30.0, 40.0, 50.0])
    assert ind.obv(close, volume).tolist() == [10.0, 30.0, 60.0, 20.0, 70.0]


def test_rolling_std_is_accurate_on_large_prices():
    """Deviations from a centre keep precision where sums of squares would cancel."""
    rng = np.random.default_rng(5)
    x = 1e6 + np.cumsum(rng.normal(0, 1, 5000))
    mean, std = ind.rolling_mean_std(x, 30, ddof=1)
    windows = sliding_window_view(x, 30)
    np.testing.assert_allclose(mean[29:], windows.mean(axis=1), rtol=1e-13)
    np.testing.assert_allclose(std[29:], windows.std(axis=1, ddof=1), rtol=1e-9)


def test_rolling_windows_with_nan_and_constant_runs():
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 7.0, 7.0, 7.0])
    mean, std = ind.rolling_mean_std(x, 3, ddof=1)
    ref = pd.Series(x).rolling(3)
    np.testing.assert_allclose(mean, ref.mean(), equal_nan=True)
    np.testing.assert_allclose(std, ref.std(), equal_nan=True)
    assert mean[9] == 7.0 and std[9] == 0.0  # exactly, for a flat window
    assert np.isnan(mean[2:5]).all()  # windows holding the NaN


def test_ewm_matches_pandas_with_gaps():
    x = np.array([np.nan, 1.0, 2.0, np.nan, np.nan, 5.0, 3.0, np.nan, 4.0, 8.0])
    for alpha, minp in ((0.3, 1), (0.25, 3)):
        ref = pd.Series(x).ewm(alpha=alpha, adjust=False, min_periods=minp).mean()
        np.testing.assert_allclose(ind.ewm_mean(x, alpha, minp), ref, rtol=1e-14, equal_nan=True)


def test_ewm_gap_weights_by_hand():
    """Across a gap the previous value weighs (1 - a)**k against a for the new one (pandas'
    documented ignore_na=False weights)."""
    out = ind.ewm_mean(np.array([1.0, 3.0, np.nan, np.nan, 5.0]), 0.5, 1)
    w = 0.5 * 1 + 0.5 * 3  # 2.0
    expected = [1.0, w, w, w, (0.5**3 * w + 0.5 * 5) / (0.5**3 + 0.5)]
    np.testing.assert_allclose(out, expected, rtol=1e-15)


def test_short_input_is_all_nan_and_empty_input_is_empty():
    short = random_walk(5)
    for out in (
        ind.sma(short["close"], 20),
        ind.atr(short["high"], short["low"], short["close"], 14),
    ):
        assert len(out) == 5 and out.isna().all()
    empty = random_walk(0)
    assert ind.rsi(empty["close"]).empty
    assert ind.macd(empty["close"]).shape == (0, 3)


# ------------------------------------------- array-in/array-out and the frame-free route
def test_the_array_functions_give_the_series_functions_numbers_without_pandas(df):
    close, high, low, volume = (df[c].to_numpy() for c in ("close", "high", "low", "volume"))
    sma = ind.sma_values(close, 20)
    assert type(sma) is np.ndarray
    np.testing.assert_allclose(sma, df["close"].rolling(20).mean().to_numpy(), rtol=1e-10)
    pairs = [
        (sma, ind.sma(df["close"], 20)),
        (ind.ema_values(close, 12), ind.ema(df["close"], 12)),
        (ind.rsi_values(close, 14), ind.rsi(df["close"], 14)),
        (ind.atr_values(high, low, close, 14), ind.atr(df["high"], df["low"], df["close"], 14)),
        (ind.obv_values(close, volume), ind.obv(df["close"], df["volume"])),
    ]
    for arr, series in pairs:
        assert type(arr) is np.ndarray and isinstance(series, pd.Series)
        assert series.index.equals(df.index)
        np.testing.assert_array_equal(arr, series.to_numpy())
    frames = [
        (ind.macd_values(close), ind.macd(df["close"]), ("macd", "signal", "diff")),
        (ind.bollinger_values(close), ind.bollinger(df["close"]),
         ("mavg", "hband", "lband", "pband", "wband")),
        (ind.ichimoku_values(high, low), ind.ichimoku(df["high"], df["low"]),
         ("conv", "base", "a", "b")),
    ]  # fmt: skip
    for arrays, frame, names in frames:
        assert list(frame.columns) == list(names) and frame.index.equals(df.index)
        for arr, name in zip(arrays, names, strict=True):
            np.testing.assert_array_equal(arr, frame[name].to_numpy())


def test_every_builtin_feature_computes_the_same_from_arrays_as_from_the_frame(df):
    """The serving plan feeds the built-ins a mapping of column -> array, not the frame."""
    from cryptoai.features.registry import FEATURES

    frame = df.assign(taker_buy_base=df["volume"] * 0.4)
    arrays = {c: frame[c].to_numpy(dtype=np.float64) for c in frame.columns}
    for name in FEATURES.names():
        definition = FEATURES.get(name)
        assert definition.arrays, name
        for params in ({}, {"relative": True}):
            fields = definition.params.model_fields
            if not set(params) <= set(fields):
                continue
            p = definition.params.model_validate(params)
            from_frame = definition.compute(frame, p)
            from_arrays = definition.compute(arrays, p)
            assert len(from_frame) == len(from_arrays) == len(definition.columns(p))
            for a, b in zip(from_frame, from_arrays, strict=True):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
