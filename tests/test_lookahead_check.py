"""check_lookahead: built-in strategies pass it, strategies that read later bars fail it with
the first changed decision bar named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import ohlcv_frame

from cryptoai.data.validate import check_ohlcv
from cryptoai.errors import BadInputError
from cryptoai.strategies import BaseStrategy, check_lookahead, list_strategies
from cryptoai.strategies.lookahead import perturb_after

#: Every built-in, with parameters that make it trade often on 1,200 hourly bars.
BUILTINS = {
    "bollinger_reversion": {},
    "buy_and_hold": {},
    "ema_cross": {"fast": 5, "slow": 20},
    "model_signal": {"column": "prediction", "long_above": 0.55, "short_below": 0.45},
    "rsi_reversion": {"window": 7, "lower": 35.0, "upper": 65.0, "allow_short": True},
}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    frame = ohlcv_frame(1200, seed=8, extra=True)
    frame["prediction"] = np.random.default_rng(1).uniform(0.3, 0.7, len(frame))
    return frame


class ShiftLeak(BaseStrategy):
    """Reads the close ``ahead`` bars later: ``close.shift(-ahead)``."""

    name = "shift_leak"
    params = {"ahead": 1}

    def signals(self, data):
        return (data["close"].shift(-self.ahead) / data["close"] - 1.0).fillna(0.0)


class OnBarLeak(BaseStrategy):
    """Event-engine only: keeps the closes in ``on_start`` and peeks at a later one."""

    name = "on_bar_leak"
    params = {"ahead": 3}

    def on_start(self, data):
        self._close = data["close"].to_numpy()

    def on_bar(self, ctx):
        j = ctx.i + self.ahead
        if j >= len(self._close):
            return None
        return 1.0 if self._close[j] > ctx.close else 0.0


class OrderLeak(BaseStrategy):
    """Places limit orders at the next bar's low: a leak through orders, not return values."""

    name = "order_leak"
    params = {}

    def on_start(self, data):
        self._low = data["low"].to_numpy()

    def on_bar(self, ctx):
        if ctx.i + 1 < len(self._low):
            self.buy(limit=float(self._low[ctx.i + 1]))


class FullSampleLeak(BaseStrategy):
    """Long above the mean close of the whole sample."""

    name = "full_sample_leak"
    params = {}

    def signals(self, data):
        return (data["close"] > data["close"].mean()).astype(float)


def test_the_builtin_list_is_complete():
    assert set(BUILTINS) <= set(list_strategies())


@pytest.mark.parametrize("mode", ["signals", "event"])
@pytest.mark.parametrize("name", list(BUILTINS))
def test_every_builtin_strategy_passes(data, name, mode):
    report = check_lookahead(name, data, BUILTINS[name], n_points=4, seed=3, mode=mode)
    assert report.ok, report.message
    assert report.first_difference is None and report.perturbed_after is None
    assert report.n_points == 4 and set(report.points) <= set(data.index[:-1])
    assert report.mode == mode and "no lookahead" in str(report)
    assert report.raise_if_failed() is report
    if name != "buy_and_hold":  # the rewritten future did change its later decisions
        assert report.details["points_with_later_changes"] > 0


def test_a_shift_minus_one_strategy_fails_at_the_decision_bar(data):
    report = check_lookahead(ShiftLeak(), data, n_points=5, seed=0)
    assert not report.ok and report.mode == "signals"
    # its decision at t reads bar t + 1: the earliest changed bar is the first sampled bar
    assert report.first_difference == report.points[0] == report.perturbed_after
    assert str(report.first_difference) in report.message
    with pytest.raises(BadInputError, match="looks ahead"):
        report.raise_if_failed()


def test_the_first_changed_bar_is_named_exactly(data):
    report = check_lookahead(ShiftLeak, data, {"ahead": 5}, n_points=5, seed=2)
    first_point = data.index.get_loc(report.points[0])
    # decisions at t-4 .. t read bars after t, whose closes all changed
    assert report.first_difference == data.index[first_point - 4]
    assert report.perturbed_after == report.points[0]


def test_an_on_bar_leak_fails_under_the_event_engine(data):
    report = check_lookahead(OnBarLeak(), data, n_points=6, seed=1)
    assert not report.ok and report.mode == "event"
    t = data.index.get_loc(report.perturbed_after)
    first = data.index.get_loc(report.first_difference)
    assert t - 2 <= first <= t  # only decisions reading bars after t can change


def test_a_leak_through_order_prices_fails(data):
    report = check_lookahead(OrderLeak(), data, n_points=3, seed=0)
    assert not report.ok
    assert report.first_difference == report.points[0]  # the limit at t is bar t+1's low


def test_a_full_sample_statistic_fails(data):
    assert not check_lookahead(FullSampleLeak(), data, n_points=3).ok


def test_perturbed_frames_are_valid_and_differ_only_after_t(data):
    rng = np.random.default_rng(0)
    t = 700
    other = perturb_after(data, t, rng)
    check_ohlcv(other)
    pd.testing.assert_frame_equal(other.iloc[: t + 1], data.iloc[: t + 1])
    later = slice(t + 1, None)
    for col in ("open", "high", "low", "close", "volume"):
        assert (other[col].to_numpy()[later] != data[col].to_numpy()[later]).all(), col
    assert sorted(other["prediction"].iloc[later]) == sorted(data["prediction"].iloc[later])
    assert not other["prediction"].iloc[later].equals(data["prediction"].iloc[later])


def test_the_check_is_cheap_and_repeatable(data):
    runs = []

    class Counting(BaseStrategy):
        name = "counting"
        params = {}

        def signals(self, frame):
            runs.append(len(frame))
            return pd.Series(1.0, index=frame.index)

    a = check_lookahead(Counting, data, n_points=3, seed=5)
    assert len(runs) == 1 + 3  # one reference run, one per sampled bar
    b = check_lookahead(Counting, data, n_points=3, seed=5)
    assert a == b and a.ok


def test_bad_arguments_are_one_line_errors(data):
    with pytest.raises(BadInputError, match="no on_bar"):
        check_lookahead(FullSampleLeak, data, mode="event")
    with pytest.raises(BadInputError, match="no signals"):
        check_lookahead(OnBarLeak, data, mode="signals")
    with pytest.raises(BadInputError, match="n_points"):
        check_lookahead("ema_cross", data, n_points=0)
    with pytest.raises(BadInputError, match="no parameter"):
        check_lookahead("ema_cross", data, {"speed": 3})
