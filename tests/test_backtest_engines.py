"""Both engines agree bar for bar, neither looks ahead, and sweeps equal single runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cryptoai.backtest import run_backtest, run_event, run_many, run_strategy, run_vectorized, sweep
from cryptoai.backtest.settings import ExecutionSettings
from cryptoai.errors import BadInputError
from cryptoai.strategies import BaseStrategy, make_strategy

N = 1500


def random_bars(n: int = N, seed: int = 5, freq: str = "1h") -> pd.DataFrame:
    """Seeded random-walk candles with real gaps and wicks (so stops and limits trigger)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.003, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    idx = pd.date_range("2023-01-01", periods=n, freq=freq, tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}, index=idx
    )


DATA = random_bars()
PREDICTIONS = pd.Series(
    np.random.default_rng(9).uniform(0, 1, N), index=DATA.index, name="prediction"
)

CASES = [
    ("ema_cross", {"fast": 5, "slow": 20}, {}),
    (
        "ema_cross",
        {"fast": 5, "slow": 20},
        {"stop_loss": 0.01, "take_profit": 0.02, "trailing_stop": 0.008},
    ),
    ("bollinger_reversion", {"allow_short": True}, {"leverage": 3.0, "stop_loss": 0.03}),
    (
        "rsi_reversion",
        {"allow_short": True, "window": 10},
        {
            "fill_at": "close",
            "funding_rate": 0.0003,
            "size": "vol_target",
            "size_value": 0.5,
            "vol_slippage": 0.2,
        },
    ),
    (
        "model_signal",
        {"predictions": PREDICTIONS, "long_above": 0.7, "short_below": 0.3},
        {"size": "fixed_fraction", "size_value": 0.5, "leverage": 2.0},
    ),
    ("buy_and_hold", {}, {"leverage": 10.0, "maintenance_margin": 0.05}),
]


@pytest.mark.parametrize(("name", "params", "settings"), CASES)
def test_vectorized_and_event_engines_are_identical(name, params, settings):
    cfg = ExecutionSettings(**settings)
    vec = run_vectorized(DATA, make_strategy(name, params).signals(DATA), cfg)
    ev = run_event(DATA, make_strategy(name, params), cfg)
    assert len(vec.fills) > 1
    np.testing.assert_array_equal(vec.equity.to_numpy(), ev.equity.to_numpy())
    np.testing.assert_array_equal(vec.position.to_numpy(), ev.position.to_numpy())
    pd.testing.assert_frame_equal(vec.trades, ev.trades)
    pd.testing.assert_frame_equal(vec.fills, ev.fills)
    assert vec.funding_paid == ev.funding_paid
    assert (vec.settings["engine"], ev.settings["engine"]) == ("vectorized", "event")


def test_the_cases_exercise_stops_liquidation_and_funding():
    reasons = set()
    for name, params, settings in CASES:
        r = run_vectorized(DATA, make_strategy(name, params).signals(DATA), settings)
        reasons |= set(r.fills["reason"])
    assert {"signal", "stop_loss", "take_profit", "trailing_stop", "liquidation", "end"} <= reasons
    funded = run_strategy(DATA, "rsi_reversion", CASES[3][1], CASES[3][2])
    assert funded.funding_paid != 0


def _perturb_after(data: pd.DataFrame, t: int, jump: float) -> pd.DataFrame:
    """Same bars up to t; after it every price jumps by ``jump`` (and wiggles), still valid bars.

    A jump of 20% flips any indicator-based decision that peeks even one bar ahead."""
    out = data.copy()
    noise = np.random.default_rng(t).normal(0, 0.02, len(data) - t - 1)
    factor = jump * np.exp(noise)
    for col in ("open", "high", "low", "close"):
        out.iloc[t + 1 :, out.columns.get_loc(col)] *= factor
    return out


@pytest.mark.parametrize("engine", ["vectorized", "event"])
@pytest.mark.parametrize(("name", "params", "settings"), CASES[:4])
def test_no_lookahead_changing_the_future_cannot_change_the_past(engine, name, params, settings):
    a = run_strategy(DATA, name, params, settings, engine=engine)
    for t in (300, 600, 900, 1200):
        for jump in (0.8, 1.25):
            b = run_strategy(_perturb_after(DATA, t, jump), name, params, settings, engine=engine)
            np.testing.assert_array_equal(
                a.equity.to_numpy()[: t + 1], b.equity.to_numpy()[: t + 1]
            )
            cut = DATA.index[t]
            pd.testing.assert_frame_equal(
                a.fills[a.fills["time"] <= cut].reset_index(drop=True),
                b.fills[b.fills["time"] <= cut].reset_index(drop=True),
            )
            if settings.get("fill_at", "open") == "open":
                # the decision at t's close, filled at t+1's open, must not read bar t+1 either
                nxt = DATA.index[t + 1]
                a_next = a.fills[(a.fills["time"] == nxt) & (a.fills["reason"] == "signal")]
                b_next = b.fills[(b.fills["time"] == nxt) & (b.fills["reason"] == "signal")]
                assert a_next["side"].tolist() == b_next["side"].tolist()
            assert not a.equity.iloc[t + 1 :].equals(b.equity.iloc[t + 1 :])  # the future changed


@pytest.mark.parametrize(("name", "params", "settings"), CASES)
def test_signals_on_a_truncated_history_equal_the_full_run(name, params, settings):
    k = 700
    full = make_strategy(name, params).signals(DATA)
    params_k = {**params}
    if "predictions" in params_k:
        params_k["predictions"] = PREDICTIONS.iloc[:k]
    part = make_strategy(name, params_k).signals(DATA.iloc[:k])
    pd.testing.assert_series_equal(part, full.iloc[:k])


def test_benchmark_is_buy_and_hold_with_the_same_costs():
    cfg = ExecutionSettings(fee_bps=7, slippage_bps=3, stop_loss=0.01)
    result, bench = run_backtest(DATA, "ema_cross", {"fast": 5, "slow": 20}, cfg)
    assert result.name == "ema_cross" and bench.name == "buy_and_hold"
    assert bench.settings["fee_bps"] == 7 and bench.settings["slippage_bps"] == 3
    assert bench.settings["stop_loss"] is None  # the market itself, no exits
    assert bench.fills["time"].iloc[0] == DATA.index[1]
    expected = run_vectorized(DATA, np.ones(N), cfg.with_(stop_loss=None))
    np.testing.assert_array_equal(bench.equity.to_numpy(), expected.equity.to_numpy())


def test_engine_choice_and_errors():
    assert run_strategy(DATA, "buy_and_hold").settings["engine"] == "vectorized"
    assert run_strategy(DATA, "buy_and_hold", engine="event").settings["engine"] == "event"
    with pytest.raises(BadInputError, match="unknown engine"):
        run_strategy(DATA, "buy_and_hold", engine="gpu")
    with pytest.raises(BadInputError, match="strategy instance"):
        run_event(DATA, "ema_cross")


# --- sweeps ---------------------------------------------------------------------------------


def _independent_stats(equity: np.ndarray, cash: float, ppy: float) -> tuple[float, float]:
    curve = np.r_[cash, equity]
    mdd = float(np.max(1 - curve / np.maximum.accumulate(curve)))
    r = curve[1:] / curve[:-1] - 1
    return mdd, r.mean() / r.std(ddof=1) * math.sqrt(ppy)


def test_crossover_sweep_equals_single_runs():
    cfg = ExecutionSettings(stop_loss=0.02, leverage=2.0)
    grid = {"fast": [3, 5, 8], "slow": [8, 20, 30]}  # (8, 8) is invalid and skipped
    table = sweep(DATA, "ema_cross", grid, cfg)
    assert len(table) == 8 and list(table.columns[:2]) == ["fast", "slow"]
    for row in table.itertuples():
        single = run_strategy(DATA, "ema_cross", {"fast": row.fast, "slow": row.slow}, cfg)
        assert row.final_equity == pytest.approx(single.final_equity, rel=1e-12)
        assert row.n_trades == len(single.trades)
        mdd, sharpe = _independent_stats(single.equity.to_numpy(), 10_000, 365 * 24)
        assert row.max_drawdown == pytest.approx(-mdd, rel=1e-9)  # negative, as compute_metrics
        assert row.sharpe == pytest.approx(sharpe, rel=1e-9)
        assert row.total_return == pytest.approx(single.final_equity / 10_000 - 1)


def test_generic_sweep_and_run_many_equal_single_runs():
    cfg = ExecutionSettings(fill_at="close", funding_rate=0.0002)
    grid = {"window": [7, 14], "lower": [25.0, 35.0], "allow_short": [True]}
    table = sweep(DATA, "rsi_reversion", grid, cfg)
    targets = []
    for row in table.itertuples():
        params = {"window": row.window, "lower": row.lower, "allow_short": True}
        single = run_strategy(DATA, "rsi_reversion", params, cfg)
        assert row.final_equity == pytest.approx(single.final_equity, rel=1e-12)
        assert row.funding_paid == pytest.approx(single.funding_paid, rel=1e-12)
        targets.append(make_strategy("rsi_reversion", params).signals(DATA).to_numpy())
    many = run_many(DATA, np.vstack(targets), cfg)
    np.testing.assert_allclose(many["final_equity"], table["final_equity"], rtol=1e-12)


def test_sweep_errors():
    with pytest.raises(BadInputError, match="no valid parameter set"):
        sweep(DATA, "ema_cross", {"fast": [30], "slow": [10]})
    with pytest.raises(BadInputError, match="no parameter"):
        sweep(DATA, "ema_cross", {"fastest": [3]})
    with pytest.raises(BadInputError, match="shape"):
        run_many(DATA, np.ones(N))


class FlipEveryBar(BaseStrategy):
    name = "flip_every_bar"

    def signals(self, data):
        return pd.Series(np.where(np.arange(len(data)) % 2 == 0, 1.0, -1.0), index=data.index)

    def on_bar(self, ctx):
        return 1.0 if ctx.i % 2 == 0 else -1.0


def test_fill_buffers_grow_past_their_first_size_in_both_engines():
    data = random_bars(20_000, seed=8, freq="1min")
    cfg = ExecutionSettings(fee_bps=0, slippage_bps=0)
    vec = run_vectorized(data, FlipEveryBar().signals(data), cfg)
    ev = run_event(data, FlipEveryBar(), cfg)
    assert len(vec.fills) == 1 + 2 * (len(data) - 2) + 1  # open, a flip per bar, final close
    pd.testing.assert_frame_equal(vec.fills, ev.fills)
    np.testing.assert_array_equal(vec.equity.to_numpy(), ev.equity.to_numpy())
    assert len(vec.trades) == len(data) - 1
