"""Ichimoku lines against the real `ta` package, by hand, and without lookahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import ta
from helpers import ohlcv_frame

from cryptoai.features import indicators as ind
from cryptoai.features.engineering import build_features
from cryptoai.features.registry import known_features
from cryptoai.features.spec import FeatureSpec

DEFAULT_COLUMNS = ["ichimoku_conv_9", "ichimoku_base_26", "ichimoku_a_9_26", "ichimoku_b_26_52"]


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return ohlcv_frame(1500, seed=21, start="2023-06-01")


def spec(**params) -> FeatureSpec:
    return FeatureSpec.model_validate({"features": [{"name": "ichimoku", "params": params}]})


@pytest.mark.parametrize(("w1", "w2", "w3"), [(9, 26, 52), (5, 10, 30), (3, 3, 3)])
def test_ichimoku_equals_ta_after_warm_up(df, w1, w2, w3):
    ours = ind.ichimoku(df["high"], df["low"], w1, w2, w3)
    ref = ta.trend.IchimokuIndicator(df["high"], df["low"], w1, w2, w3, visual=False)
    pairs = {
        "conv": (ref.ichimoku_conversion_line(), w1),
        "base": (ref.ichimoku_base_line(), w2),
        "a": (ref.ichimoku_a(), max(w1, w2)),
        "b": (ref.ichimoku_b(), w3),
    }
    for col, (expected, warm) in pairs.items():
        values = ours[col].to_numpy()
        assert np.isnan(values[: warm - 1]).all(), col
        np.testing.assert_array_equal(values[warm - 1 :], expected.to_numpy()[warm - 1 :], col)
    assert ours.index.equals(df.index)


def test_ichimoku_by_hand():
    idx = pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC")
    high = pd.Series([10.0, 12.0, 11.0, 15.0, 13.0, 14.0], idx)
    low = pd.Series([8.0, 9.0, 7.0, 12.0, 11.0, 10.0], idx)
    out = ind.ichimoku(high, low, 2, 3, 4)
    nan = np.nan
    # conv: (max high + min low) / 2 over 2 bars, e.g. bar 1: (12 + 8) / 2
    np.testing.assert_array_equal(out["conv"], [nan, 10.0, 9.5, 11.0, 13.0, 12.0])
    # base over 3 bars, span A the mean of conv and base, span B over 4 bars
    np.testing.assert_array_equal(out["base"], [nan, nan, 9.5, 11.0, 11.0, 12.5])
    np.testing.assert_array_equal(out["a"], [nan, nan, 9.5, 11.0, 12.0, 12.25])
    np.testing.assert_array_equal(out["b"], [nan, nan, nan, 11.0, 11.0, 11.0])


def test_rolling_extremes_match_pandas_with_gaps():
    rng = np.random.default_rng(4)
    x = pd.Series(rng.normal(size=400))
    x[rng.random(400) < 0.1] = np.nan
    for window, minp in [(1, 1), (5, 5), (5, 2), (37, 30)]:
        np.testing.assert_array_equal(
            ind.rolling_max(x, window, minp), x.rolling(window, min_periods=minp).max()
        )
        np.testing.assert_array_equal(
            ind.rolling_min(x, window, minp), x.rolling(window, min_periods=minp).min()
        )


def test_spec_columns_carry_the_parameters_and_leave_out_the_lagging_span(df):
    frame = build_features(df, spec())
    assert list(frame.columns) == DEFAULT_COLUMNS  # four lines: no lagging span
    rel = build_features(df, spec(window1=5, window2=10, window3=30, relative=True))
    names = ["ichimoku_conv_5_rel", "ichimoku_base_10_rel", "ichimoku_a_5_10_rel"]
    assert list(rel.columns) == [*names, "ichimoku_b_10_30_rel"]
    lines = ind.ichimoku(df["high"], df["low"], 5, 10, 30)
    np.testing.assert_allclose(rel["ichimoku_conv_5_rel"], df["close"] / lines["conv"] - 1.0)
    np.testing.assert_allclose(rel["ichimoku_b_10_30_rel"], df["close"] / lines["b"] - 1.0)


@pytest.mark.parametrize(
    "params", [{}, {"window1": 5, "window2": 10, "window3": 30, "relative": True}]
)
def test_ichimoku_has_no_lookahead(df, params):
    full = build_features(df, spec(**params))
    for cut in (1, 9, 51, 52, 53, 700, len(df) - 1):
        part = build_features(df.iloc[:cut], spec(**params))
        pd.testing.assert_frame_equal(part, full.iloc[:cut], check_freq=False)
    # and a change after bar t leaves bar t alone
    changed = df.copy()
    changed.iloc[800:, :4] *= 1.5
    again = build_features(changed, spec(**params))
    pd.testing.assert_frame_equal(again.iloc[:800], full.iloc[:800], check_freq=False)
    assert not again.iloc[800:].equals(full.iloc[800:])


def test_ichimoku_is_registered_for_the_every_feature_lookahead_test():
    assert "ichimoku" in known_features()  # test_features_engineering truncates all of them


def test_bad_windows_are_rejected():
    with pytest.raises(ValueError, match="parameter .window2.: Input should be greater"):
        spec(window2=0)
