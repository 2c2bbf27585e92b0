"""Stress scenarios, margin stress and block-bootstrap intervals (cryptoai.research.risk),
checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cryptoai.backtest import make_settings, run_strategy
from cryptoai.errors import BadInputError
from cryptoai.research import risk


def walk(n: int = 600, seed: int = 3) -> pd.DataFrame:
    """A valid hourly OHLCV random walk."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    wick = np.abs(rng.normal(0, 0.004, (2, n)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}, index=idx
    )


def valid(frame: pd.DataFrame) -> bool:
    p = frame
    return bool(
        (p["low"] <= p[["open", "close"]].min(axis=1) * (1 + 1e-12)).all()
        and (p["high"] >= p[["open", "close"]].max(axis=1) * (1 - 1e-12)).all()
        and (p[["open", "high", "low", "close"]] > 0).all().all()
    )


def test_crash_bar_prices():
    data = walk()
    at = 200
    out = risk.insert_crash(data, at, drop=0.30)
    o = data["open"].iloc[at]
    bar = out.iloc[at]
    assert (bar["open"], bar["high"], bar["low"], bar["close"]) == pytest.approx(
        (o, o, 0.7 * o, 0.7 * o)
    )
    pd.testing.assert_frame_equal(out.iloc[:at], data.iloc[:at])
    factor = 0.7 * o / data["close"].iloc[at]
    cols = ["open", "high", "low", "close"]
    np.testing.assert_allclose(out[cols].iloc[at + 1 :], data[cols].iloc[at + 1 :] * factor)
    assert valid(out)
    # by timestamp: the same bar
    pd.testing.assert_frame_equal(risk.insert_crash(data, data.index[at]), out)
    with pytest.raises(BadInputError, match="fraction"):
        risk.insert_crash(data, at, drop=1.5)


def test_gap_removes_three_days_of_bars():
    data = walk()
    out = risk.insert_gap(data, 100, days=3)
    assert len(out) == len(data) - 72
    removed = data.index.difference(out.index)
    assert removed[0] == data.index[100] and removed[-1] == data.index[171]
    assert (out.index[1:] > out.index[:-1]).all()
    pd.testing.assert_frame_equal(out, data.drop(data.index[100:172]))


def test_volatility_scaled_around_the_same_drift():
    data = walk()
    out = risk.scale_volatility(data, 3.0)
    r = np.diff(np.log(data["close"].to_numpy()))
    r3 = np.diff(np.log(out["close"].to_numpy()))
    assert r3.std() == pytest.approx(3 * r.std())
    assert r3.mean() == pytest.approx(r.mean())
    assert out["close"].iloc[0] == data["close"].iloc[0]
    assert valid(out)


def test_fees_x3_cost_exactly_three_times_with_the_same_fills():
    data = walk()
    settings = make_settings(
        {"fee_bps": 10, "maker_fee_bps": 2, "slippage_bps": 2},
        size="fixed_notional",
        size_value=5000.0,
    )
    params = {"fast": 5, "slow": 20}
    base = run_strategy(data, "ema_cross", params, settings)
    dear = run_strategy(data, "ema_cross", params, risk.scale_costs(settings, fees=3))
    assert len(base.fills) > 5
    # the same decisions: every fill at the same bar, side and price
    for col in ("time", "side", "price", "reason"):
        np.testing.assert_array_equal(base.fills[col], dear.fills[col])
    # each fill pays 3 x 10 bps of its notional
    np.testing.assert_allclose(
        dear.fills["fee"], dear.fills["size"].abs() * dear.fills["price"] * 30e-4
    )
    # fixed notional N buys N / (price (1 + fee)) units: 3x the fee rate on notionals
    # smaller by (1 + 0.001) / (1 + 0.003)
    np.testing.assert_allclose(dear.fills["size"], base.fills["size"] * 1.001 / 1.003)
    ratio = 3 * 1.001 / 1.003
    assert dear.fills["fee"].sum() == pytest.approx(ratio * base.fills["fee"].sum())
    table = risk.stress_scenarios(data, "ema_cross", params, settings)
    assert list(table.index) == ["base", "crash", "gap", "vol_x3", "fees_x3", "slippage_x5"]
    assert table.loc["fees_x3", "fees_paid"] == pytest.approx(
        ratio * table.loc["base", "fees_paid"]
    )
    assert table.loc["base", "total_return"] == pytest.approx(
        base.equity.iloc[-1] / base.initial_cash - 1
    )
    assert table.loc["slippage_x5", "total_return"] < table.loc["base", "total_return"]


def test_liquidation_at_the_leverage_where_the_move_exceeds_the_margin():
    n, mm, low = 30, 0.005, 85.0
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    data = pd.DataFrame(
        {"open": 100.0, "high": 100.0, "low": 100.0, "close": 100.0, "volume": 1.0}, index=idx
    )
    data.iloc[10, data.columns.get_loc("low")] = low  # a 15% wick down, then back
    settings = make_settings(
        {"fee_bps": 0, "maker_fee_bps": 0, "slippage_bps": 0}, maintenance_margin=mm
    )
    table = risk.margin_stress(data, "buy_and_hold", None, settings)
    # all in at 100 with leverage L: units 100 L / 100 per 100 of equity, debt 100 (L - 1);
    # liquidated when equity falls to mm x notional: price (L - 1) / (L (1 - mm)) x 100
    expected = min(lev for lev in range(1, 11) if 100 * (lev - 1) / (lev * (1 - mm)) >= low)
    assert expected == 7
    assert risk.liquidation_leverage(table) == expected
    assert not table.loc[: expected - 1, "liquidated"].any()
    assert table.loc[expected:, "liquidated"].all()
    assert table.loc[expected, "first_liquidation"] == idx[10]
    # liquidated at its liquidation price: what is left is the maintenance margin
    liq_px = 100 * (expected - 1) / (expected * (1 - mm))
    left = 10_000 * expected / 100 * liq_px * mm
    assert table.loc[expected, "worst_equity"] == pytest.approx(left, rel=1e-6)
    assert table.loc[1, "worst_equity"] == pytest.approx(10_000.0)  # marked at the close
    summary = risk.risk_summary(margin=table)
    assert summary["margin.liquidation_leverage"] == 7.0


def test_block_bootstrap_with_block_one_is_the_iid_bootstrap():
    r = np.random.default_rng(1).normal(0.001, 0.01, 300)
    n_boot, seed = 200, 5
    idx = np.random.default_rng(seed).integers(0, len(r), size=(n_boot, len(r)))
    sample = r[idx]
    sharpes = sample.mean(axis=1) / sample.std(axis=1, ddof=1)
    for method in ("stationary", "moving"):
        got = risk.bootstrap_indices(len(r), n_boot, 1, method, seed)
        np.testing.assert_array_equal(got, idx)
        ci = risk.bootstrap_metrics(r, n_boot=n_boot, block=1, method=method, seed=seed)
        assert ci["sharpe_low"] == pytest.approx(np.percentile(sharpes, 2.5))
        assert ci["sharpe_high"] == pytest.approx(np.percentile(sharpes, 97.5))
        assert ci["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1))


def test_block_indices_are_runs_of_consecutive_bars():
    idx = risk.bootstrap_indices(100, 3, 10, "moving", 0)
    assert idx.shape == (3, 100)
    blocks = idx.reshape(3, 10, 10)
    assert (np.diff(blocks, axis=2) == 1).all()
    st = risk.bootstrap_indices(1000, 50, 20, "stationary", 0)
    assert st.min() >= 0 and st.max() < 1000
    steps = np.diff(st, axis=1)
    continued = (steps == 1) | (steps == -999)
    assert 0.9 < continued.mean() < 0.99  # a new block with probability 1/20
    with pytest.raises(BadInputError, match="method"):
        risk.bootstrap_indices(10, 1, 2, "circular")


def test_bootstrap_interval_covers_the_true_sharpe_at_about_the_nominal_rate():
    mu, sd, n = 0.05, 1.0, 400  # true per-bar Sharpe 0.05
    hits = []
    for seed in range(40):
        r = np.random.default_rng(100 + seed).normal(mu, sd, n)
        ci = risk.bootstrap_metrics(r, n_boot=300, block=1, confidence=0.9, seed=seed)
        hits.append(ci["sharpe_low"] <= mu / sd <= ci["sharpe_high"])
    assert 0.75 <= np.mean(hits) <= 1.0


def test_bootstrap_drawdown_interval_brackets_and_is_seeded():
    r = np.random.default_rng(2).normal(0.0005, 0.01, 500)
    a = risk.bootstrap_metrics(r, n_boot=200, seed=1, periods_per_year=8760)
    b = risk.bootstrap_metrics(r, n_boot=200, seed=1, periods_per_year=8760)
    assert a == b
    assert a["max_drawdown_low"] <= a["max_drawdown_high"] <= 0
    equity = np.cumprod(1 + r)
    hand = (equity / np.maximum(np.maximum.accumulate(equity), 1.0) - 1).min()
    assert a["max_drawdown"] == pytest.approx(hand)
    assert a["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(8760))
    assert a["block"] == round(500 ** (1 / 3))
