"""Trials through the parallel kernel (``run_compiled``) against one ``run_strategy`` each.

The compiled path never records fills and keeps no per-bar array: it tallies the round
trips and the returns' moments and per-block sums inside the kernel, and the metrics come
from ``metrics_table``. Each trial must get what an independent single backtest (fills,
``round_trips``, ``compute_metrics``, its returns through numpy and scipy) gives it, under
every execution feature that changes fills: stops, ladders, leverage and liquidation,
shorts, funding, the cost models, sizing modes and fill timing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from cryptoai.backtest import make_settings, run_strategy, sweeps
from cryptoai.backtest.metrics import METRIC_NAMES, compute_metrics
from cryptoai.optimize.moments import pbo_splits
from cryptoai.optimize.stats import probability_of_backtest_overfitting
from cryptoai.optimize.trials import SKIPPED, TrialRunner, bar_returns, run_chunk, run_compiled

SETTINGS = {
    "fees only": {"fee_bps": 10.0, "slippage_bps": 2.0},
    "stops and target": {"stop_loss": 0.02, "take_profit": 0.04, "trailing_stop": 0.03},
    "leverage 5, liquidations": {"leverage": 5.0, "maintenance_margin": 0.05},
    "funding, fixed fraction": {
        "funding_rate": 0.0003,
        "size": "fixed_fraction",
        "size_value": 0.5,
    },
    "ladder, time stop": {
        "ladder": ((0.01, 0.5), (0.03, 0.5)),
        "ladder_breakeven": True,
        "time_stop_bars": 30,
    },
    "fill at close, vol target": {
        "fill_at": "close",
        "size": "vol_target",
        "size_value": 0.01,
        "vol_slippage": 0.5,
    },
    "maker/taker": {"cost_model": "maker_taker", "take_profit": 0.02},
    "spread": {"cost_model": "spread", "spread_bps": 15.0},
    "tiered fees": {
        "cost_model": "tiered",
        "fee_tiers": ((0.0, 0.001, 0.0005), (50_000.0, 0.0006, 0.0002)),
    },
    "no close at end": {"close_at_end": False},
}
STRATEGIES = {
    "ema_cross": [{"fast": f, "slow": s} for f in (3, 8, 21) for s in (25, 34, 55)],
    "rsi_reversion": [
        {"window": w, "lower": lo, "upper": 100 - lo, "allow_short": sh}
        for w in (7, 14)
        for lo in (25.0, 35.0)
        for sh in (False, True)
    ],
    "bollinger_reversion": [
        {"window": w, "k": k, "allow_short": True} for w in (10, 30) for k in (1.0, 2.0)
    ],
}


def runner(data, strategy, settings):
    return TrialRunner(data, strategy, {}, make_settings(settings), "sharpe", 1)


def assert_same_summary(got, returns: np.ndarray, label: str) -> None:
    """The kernel's summary against the returns of a single backtest, through numpy/scipy."""
    n_blocks = pbo_splits(len(returns))
    size = len(returns) // n_blocks
    body = returns[: n_blocks * size].reshape(n_blocks, size)
    assert (got.n_obs, got.block_size, got.block_sums.shape) == (len(returns), size, (2, n_blocks))
    close = {"rel": 1e-9, "abs": 1e-15}
    np.testing.assert_allclose(got.block_sums[0], body.sum(axis=1), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(got.block_sums[1], (body**2).sum(axis=1), rtol=1e-9, atol=1e-18)
    assert got.mean == pytest.approx(returns.mean(), **close), label
    if returns.std() == 0:
        assert math.isnan(got.skew) and math.isnan(got.kurtosis), label
        return
    assert got.std == pytest.approx(returns.std(ddof=1), rel=1e-9), label
    assert got.skew == pytest.approx(sps.skew(returns), rel=1e-6, abs=1e-9), label
    assert got.kurtosis == pytest.approx(sps.kurtosis(returns, fisher=False), rel=1e-6), label


def assert_same_metrics(got: dict, want: dict, label: str) -> None:
    assert list(got) == list(METRIC_NAMES), label
    for name in METRIC_NAMES:
        a, b = got[name], want[name]
        assert type(a) is type(b), (label, name)
        if isinstance(b, float) and math.isnan(b):
            assert math.isnan(a), (label, name, a)
        else:
            assert a == pytest.approx(b, rel=1e-11, abs=1e-9), (label, name)


@pytest.mark.parametrize("case", list(SETTINGS))
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_compiled_trials_equal_single_backtests(ohlcv, case, strategy):
    data = ohlcv(n=900, seed=11, extra=True)
    settings = {"fee_bps": 10.0, "slippage_bps": 2.0} | SETTINGS[case]
    combos = STRATEGIES[strategy]
    trials = run_compiled(runner(data, strategy, settings), list(enumerate(combos)))
    traded = 0
    for trial, combo in zip(trials, combos, strict=True):
        single = run_strategy(data, strategy, combo, settings)
        label = f"{strategy} {combo} / {case}"
        assert trial.params == combo
        assert_same_metrics(trial.metrics, compute_metrics(single), label)
        assert trial.returns is None  # a summary, not a per-bar array
        assert_same_summary(trial.summary, bar_returns(single), label)
        traded += len(single.trades) > 0
    assert traded >= len(combos) // 2  # the cases do trade: the tallies are exercised


def test_blocks_keep_the_order_and_skipped_sets_keep_their_place(ohlcv, monkeypatch):
    data = ohlcv(n=600, seed=2)
    items = list(enumerate([{"fast": 5, "slow": 20}, {"fast": 30, "slow": 10}] * 3))
    items += [(6, {"fast": 4, "slow": 40}), (7, {"fast": 9, "slow": 12})]
    whole = run_chunk(runner(data, "ema_cross", {}), items)
    # a block of 3 runs at a time: ema_cross's fused path and the target-series path
    monkeypatch.setattr(sweeps, "BLOCK_BYTES", 3 * 8 * len(data))
    blocked = run_chunk(runner(data, "ema_cross", {}), items)
    assert [t.state == SKIPPED for t in whole] == [False, True] * 3 + [False, False]
    for a, b, (number, params) in zip(whole, blocked, items, strict=True):
        assert a.number == b.number == number and a.params == b.params == params
        assert a.state == b.state
        if a.state != SKIPPED:
            assert_same_metrics(b.metrics, a.metrics, str(params))
            single = compute_metrics(run_strategy(data, "ema_cross", params, {}))
            assert a.metrics["final_equity"] == pytest.approx(single["final_equity"], rel=1e-12)
    rsi = [(i, {"window": w}) for i, w in enumerate((5, 9, 14, 21, 30))]
    whole_rsi = run_chunk(runner(data, "rsi_reversion", {}), rsi)
    monkeypatch.setattr(sweeps, "BLOCK_BYTES", 2 * 8 * len(data))
    blocked_rsi = run_chunk(runner(data, "rsi_reversion", {}), rsi)
    for a, b in zip(whole_rsi, blocked_rsi, strict=True):
        assert_same_metrics(b.metrics, a.metrics, str(a.params))
        np.testing.assert_array_equal(a.summary.block_sums, b.summary.block_sums)


def test_sweep_statistics_are_unchanged_by_the_equity_output(ohlcv):
    """``sweep`` (statistics only, no equity kept) against single backtests."""
    data = ohlcv(n=700, seed=5)
    grid = {"window": [10, 20], "k": [1.5, 2.5], "allow_short": [True]}
    table = sweeps.sweep(data, "bollinger_reversion", grid, {"stop_loss": 0.03})
    for row in table.itertuples():
        params = {"window": row.window, "k": row.k, "allow_short": True}
        single = compute_metrics(
            run_strategy(data, "bollinger_reversion", params, {"stop_loss": 0.03})
        )
        assert row.final_equity == pytest.approx(single["final_equity"], rel=1e-12)
        assert row.n_trades == single["n_trades"]
        assert row.max_drawdown == pytest.approx(single["max_drawdown"], rel=1e-9)


def test_path_stats_equal_the_numpy_definitions_on_awkward_curves():
    """The compiled pass against ``bar_returns``, ``drawdown`` and ``max_drawdown_duration``
    (plain numpy): flat curves, exact returns to the peak, a wipe-out, under water at the end."""
    import pandas as pd

    from cryptoai.backtest._paths import (
        DD_BARS,
        DOWNSIDE,
        MAX_DD,
        MEAN,
        MEAN_EQUITY,
        STD,
        path_stats,
    )
    from cryptoai.backtest.metrics import bar_returns as series_returns
    from cryptoai.backtest.metrics import drawdown, max_drawdown_duration

    cash = 100.0
    rng = np.random.default_rng(0)
    curves = [
        [100.0, 100.0, 100.0, 100.0],  # flat: no return, no drawdown
        [90.0, 100.0, 95.0, 100.0, 101.0],  # back to the peak exactly, then above
        [120.0, 60.0, 0.0, 0.0, 5.0],  # wiped out: 0 per bar afterwards
        [101.0, 99.0, 98.0, 97.0, 100.5],  # under water at the end
        list(100.0 * np.cumprod(1.0 + rng.normal(0.0, 0.02, 5))),
    ]
    n = max(len(c) for c in curves)
    for curve in curves:
        e = np.asarray(curve + [curve[-1]] * (n - len(curve)))  # padded flat: same length
        returns, stats = path_stats(e[None, :], cash)
        s = pd.Series(e, index=pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"))
        want_r = series_returns(s, cash).to_numpy()
        np.testing.assert_array_equal(returns[0], want_r)
        assert stats[0, MEAN] == pytest.approx(want_r.mean(), rel=1e-12, abs=1e-15)
        assert stats[0, STD] == pytest.approx(want_r.std(ddof=1), rel=1e-12, abs=1e-15)
        down = math.sqrt(np.mean(np.minimum(want_r, 0.0) ** 2))
        assert stats[0, DOWNSIDE] == pytest.approx(down, rel=1e-12, abs=1e-15)
        assert stats[0, MAX_DD] == drawdown(s, cash).min()
        assert stats[0, DD_BARS] == max_drawdown_duration(s, cash)
        assert stats[0, MEAN_EQUITY] == pytest.approx(e.mean(), rel=1e-12)


def test_pbo_and_deflated_sharpe_from_summaries_equal_those_from_the_returns(ohlcv):
    """The sweep statistics of compiled trials (no returns kept) against the same
    statistics on the returns matrix of one backtest per set."""
    from cryptoai.optimize.significance import sweep_statistics
    from cryptoai.optimize.trials import TrialRunner

    data = ohlcv(n=1500, seed=8)
    combos = [
        {"window": w, "lower": lo, "upper": 100 - lo}
        for w in (6, 10, 14, 20)
        for lo in (20, 30, 40)
    ]
    run = TrialRunner(data, "rsi_reversion", {}, make_settings({}), "sharpe", 1)
    compiled = run_compiled(run, list(enumerate(combos)))
    single = [run.run(i, c) for i, c in enumerate(combos)]  # trials with returns
    assert all(t.returns is not None for t in single)
    matrix = np.column_stack([t.returns for t in single if t.state == "complete"])
    want_pbo = probability_of_backtest_overfitting(matrix, n_splits=pbo_splits(len(data)))
    best_c = max((t for t in compiled if t.value is not None), key=lambda t: t.value)
    best_s = next(t for t in single if t.number == best_c.number)
    got = sweep_statistics(compiled, best_c, 8760.0)
    want = sweep_statistics(single, best_s, 8760.0)
    assert got["pbo"] == want["pbo"] == want_pbo
    assert 0.0 <= want_pbo <= 1.0 and got["n_complete"] == matrix.shape[1] > 5
    for key in ("deflated_sharpe", "sharpe_variance", "best_sharpe_per_bar", "skew", "kurtosis"):
        assert got[key] == pytest.approx(want[key], rel=1e-6), key
