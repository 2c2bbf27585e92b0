"""The execution model on small hand-computed examples: fills, costs, exits, sizing, margin."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cryptoai.backtest.event import run_event
from cryptoai.backtest.settings import ExecutionSettings, make_settings
from cryptoai.backtest.vectorized import run_vectorized
from cryptoai.errors import BadInputError, DataValidationError
from cryptoai.strategies.base import BaseStrategy

NAN = math.nan
ZERO = {"fee_bps": 0.0, "maker_fee_bps": 0.0, "slippage_bps": 0.0}


def bars(opens, closes, highs=None, lows=None, freq="1h") -> pd.DataFrame:
    """A small OHLCV frame; high/low default to one unit outside open/close."""
    o, c = np.asarray(opens, float), np.asarray(closes, float)
    h = np.maximum(o, c) + 1 if highs is None else np.asarray(highs, float)
    lo = np.minimum(o, c) - 1 if lows is None else np.asarray(lows, float)
    idx = pd.date_range("2024-01-01", periods=len(o), freq=freq, tz="UTC", name="timestamp")
    return pd.DataFrame({"open": o, "high": h, "low": lo, "close": c, "volume": 1.0}, index=idx)


def run(data, target, **settings):
    return run_vectorized(data, np.asarray(target, float), ExecutionSettings(**settings))


# --- defaults and timing ----------------------------------------------------------------------


def test_costs_are_on_by_default():
    s = ExecutionSettings()
    assert (s.fee_bps, s.maker_fee_bps, s.slippage_bps, s.fill_at) == (10.0, 2.0, 2.0, "open")
    r = run(bars([100, 102, 104], [101, 103, 104]), [1, NAN, NAN])
    assert r.fills["fee"].sum() > 0
    assert r.fills["price"].iloc[0] > 102  # slippage against the buyer


def test_decision_at_close_fills_at_next_open_with_fee_and_slippage():
    data = bars([100, 102, 104, 103, 105], [101, 103, 103, 104, 106])
    r = run(data, [1, NAN, NAN, 0, NAN])
    fee, slip = 0.001, 0.0002
    buy = 102 * (1 + slip)
    units = 10_000 / (buy * (1 + fee))  # all equity, fee included
    sell = 105 * (1 - slip)
    cash_end = 10_000 - units * buy * (1 + fee) + units * sell * (1 - fee)
    expected = [10_000, units * 103, units * 103, units * 104, cash_end]
    np.testing.assert_allclose(r.equity.to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(r.position.to_numpy(), [0, units, units, units, 0], rtol=1e-12)
    f = r.fills
    assert list(f["time"]) == [data.index[1], data.index[4]]
    assert list(f["side"]) == ["buy", "sell"] and list(f["reason"]) == ["signal", "signal"]
    np.testing.assert_allclose(f["price"], [buy, sell], rtol=1e-12)
    np.testing.assert_allclose(f["fee"], [units * buy * fee, units * sell * fee], rtol=1e-12)
    t = r.trades.iloc[0]
    assert (t["entry_time"], t["exit_time"], t["side"]) == (data.index[1], data.index[4], "long")
    assert t["size"] == pytest.approx(units, rel=1e-12)
    assert t["pnl"] == pytest.approx(cash_end - 10_000, rel=1e-9)
    assert t["return"] == pytest.approx(t["pnl"] / (units * buy), rel=1e-12)
    assert r.equity.index.equals(data.index) and r.initial_cash == 10_000


def test_fill_at_close_is_an_explicit_option():
    data = bars([100, 102, 104, 103, 105], [101, 103, 103, 104, 106])
    r = run(data, [1, NAN, NAN, 0, NAN], fill_at="close", **ZERO)
    units = 10_000 / 101
    np.testing.assert_allclose(r.fills["price"], [101, 104])
    assert list(r.fills["time"]) == [data.index[0], data.index[3]]
    np.testing.assert_allclose(
        r.equity, [10_000, units * 103, units * 103, units * 104, units * 104]
    )
    assert r.settings["fill_at"] == "close"


def test_nan_target_keeps_the_last_one_and_a_repeat_is_not_a_new_order():
    data = bars([100, 100, 100, 100, 100, 100], [100] * 6)
    r = run(data, [1, 1, NAN, 1, 0, 0], **ZERO)
    assert list(r.fills["time"]) == [data.index[1], data.index[5]]


def test_the_last_position_is_closed_at_the_last_close_unless_asked_not_to():
    data = bars([100, 102, 104], [101, 103, 110])
    closed = run(data, [1, NAN, NAN], **ZERO)
    assert closed.fills["reason"].iloc[-1] == "end" and closed.position.iloc[-1] == 0
    assert closed.trades["pnl"].sum() == pytest.approx(closed.final_equity - 10_000)
    kept = run(data, [1, NAN, NAN], close_at_end=False, **ZERO)
    assert kept.position.iloc[-1] == pytest.approx(10_000 / 102) and kept.trades.empty
    assert kept.final_equity == pytest.approx(10_000 / 102 * 110)


# --- stops, targets, trailing -------------------------------------------------------------


def with_bar(o, h, lo, c):
    """Decide at bar 0, buy 100 units at 100 at bar 1's open; bar 2 is (o, h, lo, c)."""
    return _ohlc([(100, 100, 100, 100), (100, 101, 99, 100), (o, h, lo, c)])


def test_stop_loss_fills_at_the_stop_level():
    r = run(with_bar(99, 100, 94, 96), [1, NAN, NAN], stop_loss=0.05, **ZERO)
    exit_fill = r.fills.iloc[1]
    assert exit_fill["reason"] == "stop_loss" and exit_fill["price"] == pytest.approx(95)
    assert r.equity.iloc[2] == pytest.approx(9_500)


def test_a_gap_through_the_stop_fills_at_the_open():
    r = run(with_bar(90, 91, 89, 90), [1, NAN, NAN], stop_loss=0.05, **ZERO)
    assert r.fills["price"].iloc[1] == pytest.approx(90)
    assert r.equity.iloc[2] == pytest.approx(9_000)


def test_stop_and_target_in_one_bar_assume_the_stop():
    r = run(with_bar(100, 106, 94, 100), [1, NAN, NAN], stop_loss=0.05, take_profit=0.05, **ZERO)
    assert r.fills["reason"].iloc[1] == "stop_loss" and r.fills["price"].iloc[1] == pytest.approx(
        95
    )


def test_take_profit_is_a_maker_fill_at_the_target_or_a_better_open():
    cost = dict(fee_bps=0.0, maker_fee_bps=2.0, slippage_bps=0.0)
    r = run(with_bar(100, 106, 99, 105), [1, NAN, NAN], take_profit=0.05, **cost)
    tp = r.fills.iloc[1]
    assert tp["reason"] == "take_profit" and tp["price"] == pytest.approx(105)
    assert tp["fee"] == pytest.approx(100 * 105 * 0.0002)
    gap = run(with_bar(107, 108, 106, 107), [1, NAN, NAN], take_profit=0.05, **cost)
    assert gap.fills["price"].iloc[1] == pytest.approx(107)


def test_stop_loss_pays_taker_fee_and_slippage():
    r = run(with_bar(99, 100, 94, 96), [1, NAN, NAN], stop_loss=0.05, fee_bps=10, slippage_bps=2)
    units = 10_000 / (100 * 1.0002 * 1.001)
    entry = 100 * 1.0002
    stop = entry * 0.95 * (1 - 0.0002)  # the stop is relative to the actual entry price
    assert r.fills["price"].iloc[1] == pytest.approx(stop, rel=1e-12)
    assert r.fills["fee"].iloc[1] == pytest.approx(units * stop * 0.001, rel=1e-12)


def test_trailing_stop_trails_completed_bars_only():
    # entry at 100 (bar 1, high 110); bar 2 makes a new high 120 but its low 107 must be judged
    # against the trail of completed bars (110 * 0.9 = 99), not its own high (120 * 0.9 = 108).
    rows = [(100, 100, 100, 100), (100, 110, 99, 108), (108, 120, 107, 118), (118, 119, 105, 106)]
    o, h, lo, c = (list(x) for x in zip(*rows, strict=True))
    r = run(bars(o, c, h, lo), [1, NAN, NAN, NAN], trailing_stop=0.10, **ZERO)
    assert len(r.fills) == 2
    exit_fill = r.fills.iloc[1]
    assert exit_fill["time"] == r.equity.index[3] and exit_fill["reason"] == "trailing_stop"
    assert exit_fill["price"] == pytest.approx(108)


def test_short_stop_loss_and_pnl():
    r = run(with_bar(101, 106, 100, 104), [-1, NAN, NAN], stop_loss=0.05, **ZERO)
    assert r.fills["side"].tolist() == ["sell", "buy"]
    assert r.fills["price"].iloc[1] == pytest.approx(105)
    assert r.trades["side"].iloc[0] == "short"
    assert r.trades["pnl"].iloc[0] == pytest.approx(100 * (100 - 105))


def test_short_profit_by_hand():
    data = bars([100, 100, 95, 90, 90], [100, 96, 94, 90, 90])
    r = run(data, [-1, NAN, 0, NAN, NAN], **ZERO)
    units = 10_000 / 100
    np.testing.assert_allclose(r.position, [0, -units, -units, 0, 0])
    np.testing.assert_allclose(
        r.equity, [10_000, 20_000 - units * 96, 20_000 - units * 94, 11_000, 11_000]
    )
    assert r.trades["pnl"].iloc[0] == pytest.approx(1_000)
    assert r.trades["return"].iloc[0] == pytest.approx(0.1)


# --- limit and stop orders ----------------------------------------------------------------


def _ohlc(rows):
    o, h, lo, c = (list(x) for x in zip(*rows, strict=True))
    return bars(o, c, h, lo)


def test_limit_buy_waits_until_touched_and_pays_maker_fee():
    data = _ohlc([(100, 100, 100, 100), (100, 101, 99, 100), (99, 100, 97, 99), (99, 100, 98, 99)])
    limit = [98, NAN, NAN, NAN]
    r = run_vectorized(data, [1, NAN, NAN, NAN], ExecutionSettings(), limit_price=limit)
    buy = r.fills.iloc[0]
    assert buy["time"] == data.index[2] and buy["reason"] == "limit"
    assert buy["price"] == 98  # no slippage on a resting limit order
    units = 10_000 / (98 * 1.0002)
    assert buy["size"] == pytest.approx(units) and buy["fee"] == pytest.approx(units * 98 * 0.0002)


def test_limit_buy_gapped_through_fills_at_the_open():
    data = _ohlc([(100, 100, 100, 100), (96, 97, 95, 96), (96, 97, 95, 96)])
    r = run_vectorized(data, [1, NAN, NAN], ExecutionSettings(**ZERO), limit_price=[98, NAN, NAN])
    assert r.fills["price"].iloc[0] == 96 and r.fills["time"].iloc[0] == data.index[1]


def test_intrabar_limit_entry_is_stopped_out_in_the_same_bar_if_the_low_allows():
    data = _ohlc([(100, 100, 100, 100), (99, 100, 97, 99), (99, 100, 98, 99)])
    r = run_vectorized(
        data, [1, NAN, NAN], ExecutionSettings(stop_loss=0.01, **ZERO), limit_price=[98, NAN, NAN]
    )
    assert r.fills["reason"].tolist()[:2] == ["limit", "stop_loss"]
    assert r.fills["price"].iloc[1] == pytest.approx(98 * 0.99)
    assert r.fills["time"].iloc[1] == data.index[1]


def test_stop_buy_triggers_above_and_pays_taker_fee_and_slippage():
    data = _ohlc(
        [(100, 100, 100, 100), (100, 101, 99, 100), (101, 103, 100, 102), (102, 103, 101, 102)]
    )
    r = run_vectorized(
        data, [1, NAN, NAN, NAN], ExecutionSettings(), stop_price=[102, NAN, NAN, NAN]
    )
    buy = r.fills.iloc[0]
    assert buy["time"] == data.index[2] and buy["reason"] == "stop"
    assert buy["price"] == pytest.approx(102 * 1.0002)
    assert buy["fee"] == pytest.approx(buy["size"] * buy["price"] * 0.001)
    gap = run_vectorized(
        _ohlc([(100, 100, 100, 100), (104, 105, 103, 104), (104, 105, 103, 104)]),
        [1, NAN, NAN],
        ExecutionSettings(**ZERO),
        stop_price=[102, NAN, NAN],
    )
    assert gap.fills["price"].iloc[0] == 104


def test_limit_sell_takes_profit_on_an_open_long():
    data = _ohlc(
        [(100, 100, 100, 100), (100, 101, 99, 100), (105, 111, 104, 109), (109, 110, 108, 109)]
    )
    r = run_vectorized(
        data, [1, 0, NAN, NAN], ExecutionSettings(**ZERO), limit_price=[NAN, 110, NAN, NAN]
    )
    assert r.fills["side"].tolist() == ["buy", "sell"]
    assert r.fills["price"].tolist() == [100, 110] and r.fills["time"].iloc[1] == data.index[2]


def test_bad_order_prices_are_rejected():
    data = bars([100, 101], [100, 101])
    with pytest.raises(BadInputError, match="limit and a stop"):
        run_vectorized(data, [1, NAN], limit_price=[99, NAN], stop_price=[101, NAN])
    with pytest.raises(BadInputError, match="positive"):
        run_vectorized(data, [1, NAN], limit_price=[-1, NAN])


class LimitThenExit(BaseStrategy):
    name = "limit_then_exit"

    def on_bar(self, ctx):
        if ctx.i == 0:
            self.buy(limit=98)
        if ctx.i == 2:
            self.close()


def test_event_engine_limit_orders_match_the_vectorized_engine():
    data = _ohlc([(100, 100, 100, 100), (99, 100, 97, 99), (99, 100, 98, 99), (99, 100, 98, 99)])
    ev = run_event(data, LimitThenExit(), ExecutionSettings())
    vec = run_vectorized(
        data, [1, NAN, 0, NAN], ExecutionSettings(), limit_price=[98, NAN, NAN, NAN]
    )
    pd.testing.assert_frame_equal(ev.fills, vec.fills)
    pd.testing.assert_series_equal(ev.equity, vec.equity)
    assert ev.fills["reason"].tolist() == ["limit", "signal"]


# --- sizing ---------------------------------------------------------------------------------


def test_fixed_fraction_fixed_notional_and_fractional_targets():
    data = bars([100, 100, 100], [100, 100, 100])
    half = run(
        data, [1, NAN, NAN], size="fixed_fraction", size_value=0.5, fee_bps=10, slippage_bps=0
    )
    assert half.fills["size"].iloc[0] == pytest.approx(5_000 / (100 * 1.001))
    notional = run(data, [1, NAN, NAN], size="fixed_notional", size_value=2_500, **ZERO)
    assert notional.fills["size"].iloc[0] == pytest.approx(25)
    capped = run(data, [1, NAN, NAN], size="fixed_notional", size_value=1e9, leverage=2, **ZERO)
    assert capped.fills["size"].iloc[0] == pytest.approx(200)  # never more than equity x leverage
    frac = run(data, [0.25, NAN, NAN], **ZERO)
    assert frac.fills["size"].iloc[0] == pytest.approx(25)


def test_volatility_target_sizing_by_hand():
    rng = np.random.default_rng(3)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 30)))
    opens = np.r_[100, closes[:-1]]
    data = bars(opens, closes)
    target = np.full(30, NAN)
    target[20] = 1
    r = run(data, target, size="vol_target", size_value=0.4, vol_window=5, **ZERO)
    logret = np.diff(np.log(closes))
    vol = np.std(logret[15:20], ddof=1)  # the 5 returns known at bar 21's open (closes 15..20)
    per_bar_target = 0.4 / math.sqrt(365 * 24)
    units = 10_000 * per_bar_target / vol / opens[21]
    assert r.fills["size"].iloc[0] == pytest.approx(units, rel=1e-9)


def test_rebalancing_to_a_smaller_target_sells_the_difference():
    data = bars([100, 100, 100, 100], [100, 100, 100, 100])
    r = run(data, [1, 0.5, NAN, NAN], **ZERO)
    assert r.fills["side"].tolist()[:2] == ["buy", "sell"]
    np.testing.assert_allclose(r.fills["size"].iloc[:2], [100, 50])
    assert len(r.trades) == 1 and r.trades["size"].iloc[0] == pytest.approx(100)


def test_flip_from_long_to_short_is_two_fills_and_two_trades():
    data = bars([100, 100, 110, 100, 100], [100, 110, 110, 100, 100])
    r = run(data, [1, -1, NAN, NAN, NAN], **ZERO)
    assert (
        r.fills["side"].tolist()[:2] == ["buy", "sell"] and r.fills["time"].iloc[1] == data.index[2]
    )
    np.testing.assert_allclose(r.fills["size"].iloc[:2], [100, 100])
    assert r.fills["size"].iloc[2] == pytest.approx(
        11_000 / 110
    )  # the short is sized on new equity
    assert r.trades["side"].tolist() == ["long", "short"]
    assert r.trades["pnl"].sum() == pytest.approx(r.final_equity - 10_000)


# --- leverage, liquidation, funding ---------------------------------------------------------


def test_leveraged_long_is_liquidated_at_the_maintenance_margin():
    data = _ohlc([(100, 100, 100, 100), (100, 101, 99, 100), (95, 96, 80, 85), (85, 86, 84, 85)])
    r = run(data, [1, NAN, NAN, NAN], leverage=5, maintenance_margin=0.01, **ZERO)
    units, cash = 500.0, 10_000 - 50_000
    liq = -cash / (units * (1 - 0.01))  # equity = 1% of notional
    f = r.fills.iloc[1]
    assert f["reason"] == "liquidation" and f["price"] == pytest.approx(liq)
    assert r.equity.iloc[2] == pytest.approx(0.01 * units * liq)
    assert r.equity.iloc[3] == r.equity.iloc[2]


def test_liquidation_with_fee():
    data = _ohlc([(100, 100, 100, 100), (100, 101, 99, 100), (95, 96, 80, 85)])
    r = run(data, [1, NAN, NAN], leverage=5, maintenance_margin=0.01, fee_bps=10, slippage_bps=0)
    units = 10_000 * 5 / (100 * 1.001)
    cash = 10_000 - units * 100 * 1.001
    liq = -cash / (units * 0.99)
    assert r.fills["price"].iloc[1] == pytest.approx(liq)
    assert r.equity.iloc[2] == pytest.approx(cash + units * liq * (1 - 0.001))


def test_a_gap_past_the_bankruptcy_price_loses_the_margin_and_stops_trading():
    data = _ohlc(
        [
            (100, 100, 100, 100),
            (100, 101, 99, 100),
            (70, 71, 69, 70),
            (70, 71, 69, 70),
            (70, 71, 69, 70),
        ]
    )
    r = run(data, [1, NAN, 0, 1, NAN], leverage=5, maintenance_margin=0.01, **ZERO)
    assert r.fills["reason"].tolist() == ["signal", "liquidation"]
    assert r.fills["price"].iloc[1] == pytest.approx(80)  # equity exactly 0, never negative
    np.testing.assert_allclose(r.equity.iloc[2:], 0.0, atol=1e-9)


def test_unlevered_short_is_liquidated_before_equity_turns_negative():
    data = _ohlc([(100, 100, 100, 100), (100, 101, 99, 100), (150, 210, 149, 200)])
    r = run(data, [-1, NAN, NAN], maintenance_margin=0.005, **ZERO)
    liq = 20_000 / (100 * 1.005)
    assert r.fills["reason"].iloc[1] == "liquidation" and r.fills["price"].iloc[1] == pytest.approx(
        liq
    )
    assert r.final_equity > 0


def test_constant_funding_accrues_per_bar_on_the_held_position():
    data = bars([100, 100, 102, 104, 104], [100, 101, 103, 104, 104])
    r = run(data, [1, NAN, 0, NAN, NAN], funding_rate=0.0008, **ZERO)  # per 8h: 0.0001 per 1h bar
    units = 100
    paid = units * 0.0001 * (101 + 103)  # held at the closes of bars 1 and 2; sold at bar 3's open
    assert r.funding_paid == pytest.approx(paid)
    assert r.equity.iloc[3] == pytest.approx(10_000 + units * (104 - 100) - paid)
    assert r.trades["pnl"].iloc[0] == pytest.approx(units * 4 - paid)
    short = run(data, [-1, NAN, 0, NAN, NAN], funding_rate=0.0008, **ZERO)
    assert short.funding_paid == pytest.approx(-paid)  # shorts receive


def test_funding_series_is_charged_at_the_bar_containing_each_funding_time():
    data = bars([100, 100, 102, 104, 104], [100, 101, 103, 104, 104])
    rates = pd.Series([0.001, 0.002], index=[data.index[2] + pd.Timedelta("30min"), data.index[4]])
    r = run_vectorized(data, [1, NAN, 0, NAN, NAN], ExecutionSettings(**ZERO), funding=rates)
    assert r.funding_paid == pytest.approx(100 * 103 * 0.001)  # flat by bar 4
    assert r.settings["funding"] == "series"


# --- trades bookkeeping and bad input -------------------------------------------------------


def test_trades_add_up_to_the_equity_change():
    rng = np.random.default_rng(11)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    data = bars(np.r_[100, c[:-1]], c)
    target = rng.choice([-1.0, 0.0, 0.5, 1.0, NAN], size=400)
    r = run(data, target, stop_loss=0.02, take_profit=0.03, leverage=2, funding_rate=0.0001)
    assert r.trades["pnl"].sum() == pytest.approx(r.final_equity - 10_000, rel=1e-9)
    assert r.trades["fees"].sum() == pytest.approx(r.fills["fee"].sum(), rel=1e-12)
    assert (r.trades["exit_time"] >= r.trades["entry_time"]).all()
    assert set(r.fills["reason"]) <= {"signal", "stop_loss", "take_profit", "end"}


def test_bad_data_and_settings_are_one_line_errors():
    good = bars([100, 101, 102], [101, 102, 103])
    with pytest.raises(BadInputError, match="no bars"):
        run_vectorized(good.iloc[:0], [])
    nan = good.copy()
    nan.iloc[1, 3] = NAN
    with pytest.raises(DataValidationError):
        run_vectorized(nan, [1, NAN, NAN])
    with pytest.raises(DataValidationError):
        run_vectorized(good.iloc[::-1], [1, NAN, NAN])
    with pytest.raises(BadInputError, match="values for 3 bars"):
        run_vectorized(good, [1, 0])
    with pytest.raises(BadInputError, match="fill_at"):
        ExecutionSettings(fill_at="next")
    with pytest.raises(BadInputError, match="unknown execution setting"):
        make_settings({"fees": 1})
    with pytest.raises(BadInputError, match="maintenance_margin"):
        ExecutionSettings(leverage=50, maintenance_margin=0.05)
    with pytest.raises(BadInputError, match="stop_loss"):
        ExecutionSettings(stop_loss=1.5)
    for err in (BadInputError, DataValidationError):
        assert "\n" not in str(err("x"))


def test_volatility_scaled_slippage_by_hand():
    closes = np.array([100, 102, 99, 101, 100, 103, 104], float)
    data = bars(np.r_[100, closes[:-1]], closes)
    target = [NAN, NAN, NAN, NAN, 1, NAN, NAN]
    r = run(data, target, fee_bps=0, slippage_bps=2, vol_slippage=0.5, vol_window=3)
    vol = np.std(np.diff(np.log(closes))[1:4], ddof=1)  # returns of closes 1..4, known at bar 5
    assert r.fills["price"].iloc[0] == pytest.approx(
        data["open"].iloc[5] * (1 + 0.0002 + 0.5 * vol)
    )


def test_entry_exit_signals_become_targets():
    from cryptoai.backtest.vectorized import targets_from_signals

    idx = pd.date_range("2024-01-01", periods=8, freq="1h", tz="UTC")

    def flags(*on):
        return pd.Series([i in on for i in range(8)], index=idx)

    t = targets_from_signals(flags(1, 5), flags(3, 5), flags(6), flags(7))
    # long at 1, exit at 3, entry+exit at 5 cancel, short at 6, short exit at 7
    np.testing.assert_array_equal(t.to_numpy(), [0, 1, 1, 0, 0, 0, -1, 0])
    with pytest.raises(BadInputError, match="share the entries' index"):
        targets_from_signals(flags(1), flags(2).iloc[:4])


def test_a_prediction_at_t_trades_at_the_open_of_t_plus_1():
    from cryptoai.backtest.runner import run_strategy

    data = bars([100] * 6, [100] * 6)
    pred = pd.Series([0.5, 0.5, 0.9, 0.9, 0.1, 0.5], index=data.index)
    r = run_strategy(data, "model_signal", {"predictions": pred, "short_below": 0.2}, ZERO)
    assert r.fills["time"].tolist()[:3] == [data.index[3], data.index[5], data.index[5]]
    assert r.fills["side"].tolist()[:3] == ["buy", "sell", "sell"]  # long, then flip short


class Recorder(BaseStrategy):
    name = "recorder"
    params = {"every": 2}

    def on_start(self, data):
        self.calls = [("start", len(data))]

    def on_bar(self, ctx):
        self.calls.append((ctx.i, ctx.close, ctx.time, ctx.position))
        return 1.0 if ctx.i % (2 * self.every) < self.every else 0.0

    def on_finish(self):
        self.calls.append(("finish",))


def test_event_engine_calls_every_hook_in_order_with_the_bar_and_the_account():
    data = bars([100, 101, 102, 103, 104, 105], [101, 102, 103, 104, 105, 106])
    s = Recorder(every=2)
    run_event(data, s, ZERO)
    assert s.calls[0] == ("start", 6) and s.calls[-1] == ("finish",)
    bars_seen = s.calls[1:-1]
    assert [c[0] for c in bars_seen] == list(range(6))
    assert [c[1] for c in bars_seen] == [101, 102, 103, 104, 105, 106]
    assert bars_seen[2][2] == data.index[2]
    assert bars_seen[0][3] == 0 and bars_seen[1][3] == pytest.approx(10_000 / 101)
    assert s._broker is None  # detached after the run
