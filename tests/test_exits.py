"""Time stops and ladder exits on frames whose fills are computed by hand, in both engines."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cryptoai.backtest.event import run_event
from cryptoai.backtest.settings import ExecutionSettings
from cryptoai.backtest.vectorized import run_vectorized
from cryptoai.errors import BadInputError
from cryptoai.strategies.base import BaseStrategy

NAN = math.nan
ZERO = {"fee_bps": 0.0, "maker_fee_bps": 0.0, "slippage_bps": 0.0}


def frame(rows, freq="1h") -> pd.DataFrame:
    """Rows of (open, high, low, close)."""
    o, h, lo, c = (np.asarray(x, float) for x in zip(*rows, strict=True))
    idx = pd.date_range("2024-01-01", periods=len(o), freq=freq, tz="UTC", name="timestamp")
    return pd.DataFrame({"open": o, "high": h, "low": lo, "close": c, "volume": 1.0}, index=idx)


class Targets(BaseStrategy):
    params = {"targets": None}

    def on_bar(self, ctx):
        t = self.targets[ctx.i]
        return None if t != t else t


def both(data, target, **settings):
    """Vectorized and event results, required identical (fills and equity)."""
    cfg = ExecutionSettings(**settings)
    vec = run_vectorized(data, np.asarray(target, float), cfg)
    ev = run_event(data, Targets(targets=list(target)), cfg)
    pd.testing.assert_frame_equal(vec.fills, ev.fills)
    np.testing.assert_array_equal(vec.equity.to_numpy(), ev.equity.to_numpy())
    return vec


RISING = [(100, 101, 99, 100), (101, 102, 100, 101), (102, 103, 101, 102), (103, 104, 102, 103),
          (104, 105, 103, 104), (105, 106, 104, 105)]  # fmt: skip


def test_time_stop_closes_at_the_open_n_bars_after_entry():
    r = both(frame(RISING), [1, NAN, NAN, NAN, NAN, NAN], time_stop_bars=2, **ZERO)
    units = 10_000 / 101  # entered at bar 1's open
    assert list(r.fills["reason"]) == ["signal", "time_stop"]
    assert list(r.fills["time"]) == [r.equity.index[1], r.equity.index[3]]
    np.testing.assert_allclose(r.fills["price"], [101, 103])
    # not re-entered while the signal stays long
    np.testing.assert_allclose(r.equity.iloc[3:], units * 103)
    assert r.position.iloc[-1] == 0


def test_time_stop_pays_taker_fee_and_slippage():
    r = both(frame(RISING), [1, NAN, NAN, NAN, NAN, NAN], time_stop_bars=1)
    buy = 101 * 1.0002
    units = 10_000 / (buy * 1.001)
    sell = 102 * (1 - 0.0002)
    np.testing.assert_allclose(r.fills["price"], [buy, sell], rtol=1e-12)
    assert r.final_equity == pytest.approx(units * sell * (1 - 0.001), rel=1e-12)


LADDER_BARS = [
    (100, 100.5, 99.5, 100),  # decision: long
    (100, 101, 99.6, 100.5),  # entry at 100
    (101, 102.5, 100.5, 102),  # level 1 (102) reached: half out
    (101.5, 101.8, 99.5, 100),  # the low reaches the entry (the break-even stop)
    (106, 106.5, 105.5, 106),  # opens above level 2 (105): the rest at the open
]


def test_ladder_with_break_even_stop_by_hand():
    r = both(frame(LADDER_BARS), [1, NAN, NAN, NAN, NAN], fee_bps=10.0, maker_fee_bps=2.0,
             slippage_bps=0.0, ladder=[[0.02, 0.5], [0.05, 0.5]], ladder_breakeven=True)  # fmt: skip
    units = 10_000 / (100 * 1.001)
    assert list(r.fills["reason"]) == ["signal", "take_profit", "stop_loss"]
    np.testing.assert_allclose(r.fills["price"], [100, 102, 100])
    np.testing.assert_allclose(r.fills["size"], [units, units / 2, units / 2], rtol=1e-12)
    np.testing.assert_allclose(
        r.fills["fee"], [10_000 / 1.001 * 0.001, units / 2 * 102 * 0.0002,
                         units / 2 * 100 * 0.001], rtol=1e-12)  # fmt: skip
    cash = 10_000 - units * 100 * 1.001 + units / 2 * 102 * 0.9998 + units / 2 * 100 * 0.999
    assert r.final_equity == pytest.approx(cash, rel=1e-12)
    assert len(r.trades) == 1 and r.trades["pnl"].iloc[0] == pytest.approx(cash - 10_000)


def test_ladder_without_break_even_takes_the_second_level_at_a_gap_open():
    r = both(frame(LADDER_BARS), [1, NAN, NAN, NAN, NAN], ladder=[[0.02, 0.5], [0.05, 0.5]],
             **ZERO)  # fmt: skip
    units = 10_000 / 100
    assert list(r.fills["reason"]) == ["signal", "take_profit", "take_profit"]
    np.testing.assert_allclose(r.fills["price"], [100, 102, 106])
    assert r.final_equity == pytest.approx(units / 2 * 102 + units / 2 * 106)


def test_ladder_short_and_partial_ladder_rides_the_rest():
    bars = [(100, 100.5, 99.5, 100), (100, 100.4, 99, 99.5), (99, 99.2, 97.5, 98),
            (98, 98.5, 97, 97.5)]  # fmt: skip
    r = both(frame(bars), [-1, NAN, NAN, NAN], ladder=[[0.02, 0.3]], **ZERO)
    units = 10_000 / 100
    assert list(r.fills["reason"]) == ["signal", "take_profit", "end"]
    np.testing.assert_allclose(r.fills["price"], [100, 98, 97.5])
    np.testing.assert_allclose(r.fills["size"], [units, 0.3 * units, 0.7 * units])


def test_exit_settings_are_checked():
    with pytest.raises(BadInputError, match="time_stop_bars"):
        ExecutionSettings(time_stop_bars=0)
    with pytest.raises(BadInputError, match="at most 1"):
        ExecutionSettings(ladder=[[0.01, 0.7], [0.02, 0.7]])
    with pytest.raises(BadInputError, match="increasing"):
        ExecutionSettings(ladder=[[0.02, 0.5], [0.01, 0.5]])
    with pytest.raises(BadInputError, match="take_profit and ladder"):
        ExecutionSettings(ladder=[[0.02, 0.5]], take_profit=0.03)
    assert ExecutionSettings(ladder=[[0.02, 0.5]]).ladder == ((0.02, 0.5),)
