"""Each cost model on a frame whose fills are computed by hand, in both engines."""

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
NOFEE = {"fee_bps": 0.0, "maker_fee_bps": 0.0, "slippage_bps": 0.0}


def frame(opens, closes, freq="1h", **extra) -> pd.DataFrame:
    o, c = np.asarray(opens, float), np.asarray(closes, float)
    idx = pd.date_range("2024-01-01", periods=len(o), freq=freq, tz="UTC", name="timestamp")
    cols = {"open": o, "high": np.maximum(o, c) + 1, "low": np.minimum(o, c) - 1, "close": c,
            "volume": 1.0}  # fmt: skip
    cols.update({k: np.asarray(v, float) for k, v in extra.items()})
    return pd.DataFrame(cols, index=idx)


class Targets(BaseStrategy):
    params = {"targets": None, "limit": None}

    def on_bar(self, ctx):
        t = self.targets[ctx.i]
        if t != t:
            return None
        if self.limit is not None and not math.isnan(self.limit[ctx.i]):
            self.buy(t, limit=self.limit[ctx.i])
            return None
        return t


def both(data, target, limit=None, **settings):
    cfg = ExecutionSettings(**settings)
    vec = run_vectorized(data, np.asarray(target, float), cfg, limit_price=limit)
    ev = run_event(data, Targets(targets=list(target), limit=limit), cfg)
    pd.testing.assert_frame_equal(vec.fills, ev.fills)
    np.testing.assert_array_equal(vec.equity.to_numpy(), ev.equity.to_numpy())
    assert vec.settings["cost_model"] == cfg.cost_model
    return vec


OPENS, CLOSES = [100, 101, 102, 103], [100.5, 101.5, 102.5, 103.5]
TARGET = [1, NAN, 0, NAN]  # buy at bar 1's open, sell at bar 3's open


def test_fixed_is_the_default_and_unchanged():
    r = both(frame(OPENS, CLOSES), TARGET)
    buy, sell = 101 * 1.0002, 103 * 0.9998
    units = 10_000 / (buy * 1.001)
    np.testing.assert_allclose(r.fills["price"], [buy, sell], rtol=1e-12)
    assert r.final_equity == pytest.approx(units * sell * 0.999, rel=1e-12)


def test_spread_constant_half_per_side():
    r = both(frame(OPENS, CLOSES), TARGET, cost_model="spread", spread_bps=20.0, fee_bps=0.0)
    buy, sell = 101 * 1.001, 103 * 0.999  # half of 20 bps; slippage_bps is replaced
    np.testing.assert_allclose(r.fills["price"], [buy, sell], rtol=1e-12)
    assert r.final_equity == pytest.approx(10_000 / buy * sell, rel=1e-12)


def test_spread_column_of_the_last_completed_bar():
    data = frame(OPENS, CLOSES, spread=[0.2, 0.4, 0.3, 0.5])
    r = both(data, TARGET, cost_model="spread", **NOFEE)
    buy = 101 * (1 + 0.2 / 100.5 / 2)  # bar 1 fills with bar 0's spread
    sell = 103 * (1 - 0.3 / 102.5 / 2)  # bar 3 with bar 2's
    np.testing.assert_allclose(r.fills["price"], [buy, sell], rtol=1e-12)


def test_square_root_impact_on_quote_volume():
    qv = [1e6, 4e6, 2.5e6, 1e6]
    r = both(frame(OPENS, CLOSES, quote_volume=qv), TARGET, cost_model="impact", impact_k=10.0,
             **NOFEE)  # fmt: skip
    imp = 0.001 * math.sqrt(10_000 / 1e6)  # 10 bps x sqrt(participation) on bar 0's volume
    buy = 101 * (1 + imp)
    units = 10_000 / buy
    sell = 103 * (1 - 0.001 * math.sqrt(units * 103 / 2.5e6))
    np.testing.assert_allclose(r.fills["price"], [buy, sell], rtol=1e-12)
    np.testing.assert_allclose(r.fills["size"], [units, units], rtol=1e-12)


def test_impact_falls_back_to_volume_times_close():
    data = frame(OPENS, CLOSES)
    data["volume"] = 1_000.0
    r = both(data, TARGET, cost_model="impact", **NOFEE)
    imp = 0.001 * math.sqrt(10_000 / (1_000 * 100.5))
    assert r.fills["price"].iloc[0] == pytest.approx(101 * (1 + imp), rel=1e-12)


def test_maker_taker_limit_that_the_open_gaps_through_is_taker():
    data = frame([100, 98, 99, 100], [100, 98.5, 99.5, 100])
    limit = np.array([99.0, NAN, NAN, NAN])
    target = [1, NAN, NAN, NAN]
    fixed = both(data, target, limit=limit)
    assert fixed.fills["price"].iloc[0] == 98  # the open, maker fee, no slippage
    assert fixed.fills["fee"].iloc[0] == pytest.approx(10_000 / 1.0002 * 0.0002, rel=1e-12)
    mt = both(data, target, limit=limit, cost_model="maker_taker")
    px = 98 * 1.0002
    assert mt.fills["price"].iloc[0] == pytest.approx(px, rel=1e-12)
    assert mt.fills["fee"].iloc[0] == pytest.approx(10_000 / 1.001 * 0.001, rel=1e-12)
    # a limit reached inside the bar rests: maker in both models
    inside = frame([100, 100, 99, 100], [100, 99.5, 99.5, 100])
    rest = both(inside, target, limit=limit, cost_model="maker_taker")
    assert rest.fills["price"].iloc[0] == 99.0 and rest.fills["reason"].iloc[0] == "limit"
    assert rest.fills["fee"].iloc[0] == pytest.approx(10_000 / 1.0002 * 0.0002, rel=1e-12)


def test_fee_tiers_by_the_notional_of_the_completed_days():
    n = 12  # 4-hour bars: two days
    data = frame([100.0] * n, [100.0] * n, freq="4h")
    target = [1, NAN, 0, NAN, NAN, NAN, 1, NAN, NAN, 0, NAN, NAN]
    tiers = [[0, 10, 2], [15_000, 5, 1]]
    r = both(data, target, cost_model="tiered", fee_tiers=tiers, slippage_bps=0.0)
    u1 = 10_000 / (100 * 1.001)
    e1 = 10_000 - u1 * 100 * 1.001 + u1 * 100 * 0.999  # day 0: ~19,980 traded
    u2 = e1 / (100 * 1.0005)  # day 1 trades at the second tier
    np.testing.assert_allclose(
        r.fills["fee"], [u1 * 0.1, u1 * 0.1, u2 * 0.05, u2 * 0.05], rtol=1e-12
    )
    assert r.final_equity == pytest.approx(e1 - u2 * 100 * 0.001, rel=1e-12)


def test_cost_model_settings_are_checked():
    with pytest.raises(BadInputError, match="cost_model"):
        ExecutionSettings(cost_model="magic")
    with pytest.raises(BadInputError, match="fee_tiers"):
        ExecutionSettings(cost_model="tiered")
    with pytest.raises(BadInputError, match="start at 0"):
        ExecutionSettings(cost_model="tiered", fee_tiers=[[10, 5, 1]])
    with pytest.raises(BadInputError, match="spread"):
        run_vectorized(frame(OPENS, CLOSES), TARGET, {"cost_model": "spread"})
