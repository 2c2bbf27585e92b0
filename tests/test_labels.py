"""Targets by hand on small series; NaN wherever the horizon runs past the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import ohlcv_frame
from pydantic import ValidationError

from cryptoai.errors import BadInputError
from cryptoai.modeling.labels import (
    TargetConfig,
    direction,
    forward_log_return,
    make_target,
    multi_horizon,
    target_horizon,
    triple_barrier,
)

IDX = pd.date_range("2024-03-01", periods=5, freq="1h", tz="UTC", name="timestamp")
CLOSE = pd.Series([100.0, 101.0, 100.5, 100.5, 103.0], index=IDX)


def test_forward_log_return_by_hand():
    out = forward_log_return(CLOSE, 2)
    expected = [np.log(100.5 / 100), np.log(100.5 / 101), np.log(103 / 100.5), np.nan, np.nan]
    np.testing.assert_allclose(out, expected, rtol=1e-15)
    assert out.index.equals(IDX) and out.name == "fwd_log_ret_2"
    assert forward_log_return(CLOSE, 5).isna().all()  # horizon as long as the data


def test_direction_with_and_without_dead_zone():
    # forward 1-bar log-returns: +0.00995, -0.00496, 0, +0.02457, (none)
    np.testing.assert_array_equal(direction(CLOSE, 1), [1.0, 0.0, np.nan, 1.0, np.nan])
    np.testing.assert_array_equal(
        direction(CLOSE, 1, dead_zone=0.006), [1.0, np.nan, np.nan, 1.0, np.nan]
    )
    # 2 bars: +0.00499 (inside 0.006), -0.00496 (inside), +0.02457, then past the data
    np.testing.assert_array_equal(
        direction(CLOSE, 2, dead_zone=0.006), [np.nan, np.nan, 1.0, np.nan, np.nan]
    )
    np.testing.assert_array_equal(direction(CLOSE, 2), [1.0, 0.0, 1.0, np.nan, np.nan])


def test_multi_horizon_columns_equal_single_horizons():
    out = multi_horizon(CLOSE, [1, 3])
    assert list(out.columns) == ["fwd_log_ret_1", "fwd_log_ret_3"]
    pd.testing.assert_series_equal(out["fwd_log_ret_3"], forward_log_return(CLOSE, 3))
    assert out["fwd_log_ret_3"].isna().tolist() == [False, False, True, True, True]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: forward_log_return(CLOSE, 0), "horizon"),
        (lambda: direction(CLOSE, 1.5), "horizon"),
        (lambda: direction(CLOSE, 1, dead_zone=-0.1), "dead_zone"),
        (lambda: multi_horizon(CLOSE, []), "at least one"),
        (lambda: multi_horizon(CLOSE, [2, 2]), "distinct"),
        (lambda: forward_log_return(CLOSE.to_numpy(), 1), "Series"),
    ],
)
def test_bad_label_input(call, match):
    with pytest.raises(BadInputError, match=match):
        call()


def barrier_bars() -> pd.DataFrame:
    """Closes alternate 100 / 100*e^0.01, so with vol_window=2 every sigma is 0.01*sqrt(2) and,
    with horizon 2 and multipliers 1, every barrier sits at close * e^(+-0.02). Wicks are added
    where a touch is wanted; opens are the previous close except a gap at bar 8."""
    n = 12
    close = np.where(np.arange(n) % 2 == 0, 100.0, 100.0 * np.exp(0.01))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close)
    low = np.minimum(open_, close)
    high[4] = 102.5  # above 100*e^0.02 = 102.02: profit for t=2; below 103.05 (t=3's upper)
    low[6] = 97.5  # below 98.02 and 99.005: stop for t=4 and t=5
    open_[8], high[8], low[8] = 97.5, 103.0, 97.0  # gap down, and both barriers touched in one bar
    index = pd.date_range("2024-01-01", periods=n, freq="4h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}, index=index
    )


def test_triple_barrier_by_hand():
    bars = barrier_bars()
    out = triple_barrier(bars, horizon=2, pt_mult=1.0, sl_mult=1.0, vol_window=2)
    nan = np.nan
    odd = 100.0 * np.exp(0.01)
    expected_label = [nan, nan, 1, 0, -1, -1, -1, -1, 0, 0, nan, nan]
    expected_end = [None, None, 4, 5, 6, 6, 8, 8, 10, 11, None, None]
    expected_ret = [
        nan, nan,
        0.02,  # t=2: profit-take at its level
        0.0,  # t=3: time barrier, close back where it was
        -0.02,  # t=4: stop at its level
        -0.02,  # t=5: stop at its level
        np.log(0.975),  # t=6: both touched in bar 8 -> stop, filled at the gapped open 97.5
        np.log(97.5 / odd),  # t=7: same bar, same fill
        0.0, 0.0,  # time barriers
        nan, nan,  # horizon past the data
    ]  # fmt: skip
    np.testing.assert_array_equal(out["label"], expected_label)
    np.testing.assert_allclose(out["ret"], expected_ret, atol=1e-12)
    ends = [bars.index[i] if i is not None else pd.NaT for i in expected_end]
    assert out["t_end"].tolist() == ends
    assert out.index.equals(bars.index)


def naive_triple_barrier(bars, horizon, pt, sl, vol_window):
    """A plain loop over Python floats, for cross-checking the compiled kernel."""
    close = bars["close"].tolist()
    sigma = np.log(bars["close"]).diff().rolling(vol_window).std().tolist()
    labels = []
    for t in range(len(close)):
        if t + horizon >= len(close) or np.isnan(sigma[t]):
            labels.append(np.nan)
            continue
        width = sigma[t] * np.sqrt(horizon)
        upper, lower = close[t] * np.exp(pt * width), close[t] * np.exp(-sl * width)
        label = 0.0
        for j in range(t + 1, t + horizon + 1):
            if bars["low"].iloc[j] <= lower:
                label = -1.0
                break
            if bars["high"].iloc[j] >= upper:
                label = 1.0
                break
        labels.append(label)
    return np.array(labels)


def test_triple_barrier_matches_naive_loop_on_synthetic_candles():
    bars = ohlcv_frame(400, seed=4)
    out = triple_barrier(bars, horizon=6, pt_mult=1.5, sl_mult=1.0, vol_window=10)
    np.testing.assert_array_equal(out["label"], naive_triple_barrier(bars, 6, 1.5, 1.0, 10))
    labelled = out["label"].notna()
    assert set(out.loc[labelled, "label"]) == {-1.0, 0.0, 1.0}
    assert out["label"].iloc[-6:].isna().all() and labelled.iloc[10:-6].all()
    # t_end lies within (t, t + horizon]
    steps = (out.loc[labelled, "t_end"] - out.index[labelled]) / pd.Timedelta("1h")
    assert steps.between(1, 6).all()


def test_triple_barrier_rejects_bad_arguments():
    bars = barrier_bars()
    with pytest.raises(BadInputError, match="pt_mult"):
        triple_barrier(bars, 2, pt_mult=0, sl_mult=1)
    with pytest.raises(BadInputError, match="vol_window"):
        triple_barrier(bars, 2, vol_window=1)
    with pytest.raises(BadInputError, match="missing high"):
        triple_barrier(bars.drop(columns="high"), 2)


def test_make_target_and_horizon():
    bars = barrier_bars()
    cfg = TargetConfig(kind="triple_barrier", horizon=2, pt_mult=1, sl_mult=1, vol_window=2)
    np.testing.assert_array_equal(
        make_target(bars, cfg), triple_barrier(bars, 2, 1.0, 1.0, 2)["label"]
    )
    assert target_horizon(cfg) == 2
    d = TargetConfig(kind="direction", horizon=3, dead_zone=0.001)
    pd.testing.assert_series_equal(make_target(bars, d), direction(bars["close"], 3, 0.001))
    f = TargetConfig(kind="forward_return", horizon=4)
    pd.testing.assert_series_equal(make_target(bars, f), forward_log_return(bars["close"], 4))
    assert target_horizon(f) == 4
    # rows whose target needs bars beyond the data are NaN, never filled
    assert make_target(bars, f).iloc[-4:].isna().all()


def test_target_config_validation():
    assert TargetConfig().kind == "direction" and TargetConfig().horizon == 1
    with pytest.raises(ValidationError):
        TargetConfig(kind="sharpe", horizon=1)
    with pytest.raises(ValidationError):
        TargetConfig(horizon=0)
    with pytest.raises(ValidationError):
        TargetConfig(horizon=1, deadzone=0.1)  # typo in a field name
