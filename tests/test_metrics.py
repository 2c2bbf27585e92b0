"""Each metric against an independent computation: hand-worked examples, stdlib, naive loops."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pandas as pd
import pytest

from cryptoai.backtest.metrics import (
    compute_metrics,
    drawdown,
    max_drawdown_duration,
    monthly_returns,
    periods_per_year,
    to_jsonable,
)
from cryptoai.backtest.result import FILL_COLUMNS, TRADE_COLUMNS, BacktestResult
from cryptoai.errors import BadInputError

CASH = 100.0
# Formulas checked on samples shorter than the minimum span (annualized there otherwise NaN).
ANY_SPAN = {"min_days": 0, "min_bars": 0}
# Six daily bars worked by hand: returns 0, +10%, -10%, +5.56%, +14.83%, -10%.
EQUITY6 = [100.0, 110.0, 99.0, 104.5, 120.0, 108.0]


def make_result(
    equity: list[float] | np.ndarray,
    freq: str = "1D",
    start: str = "2024-01-01",
    position: list[float] | None = None,
    trades: pd.DataFrame | None = None,
    fills: pd.DataFrame | None = None,
    initial_cash: float = CASH,
) -> BacktestResult:
    index = pd.date_range(start, periods=len(equity), freq=freq, tz="UTC", name="timestamp")
    return BacktestResult(
        equity=pd.Series(np.asarray(equity, dtype="float64"), index=index, name="equity"),
        position=pd.Series(position if position is not None else 0.0, index=index, dtype="float64"),
        trades=trades if trades is not None else pd.DataFrame(columns=list(TRADE_COLUMNS)),
        fills=fills if fills is not None else pd.DataFrame(columns=list(FILL_COLUMNS)),
        initial_cash=initial_cash,
        settings={"fee_bps": 10.0},
    )


def make_trades(pnl: list[float], returns: list[float] | None = None) -> pd.DataFrame:
    n = len(pnl)
    times = pd.date_range("2024-01-01", periods=2 * n, freq="1D", tz="UTC")
    return pd.DataFrame(
        {
            "entry_time": times[0::2],
            "exit_time": times[1::2],
            "side": ["long"] * n,
            "size": [1.0] * n,
            "entry_price": [100.0] * n,
            "exit_price": [100.0 + p for p in pnl],
            "fees": [0.1] * n,
            "pnl": pnl,
            "return": returns if returns is not None else [p / 100.0 for p in pnl],
        }
    )


def naive_max_dd_duration(values: list[float], initial: float) -> int:
    """Loop: bars from the last peak until the equity regains it (or the data ends)."""
    peak, peak_i, best = initial, 0, 0
    for i, v in enumerate(values, start=1):  # position 0 is the initial cash
        if v >= peak:
            if peak_i < i - 1:  # we were under water and just recovered
                best = max(best, i - peak_i)
            peak, peak_i = v, i
    if peak_i < len(values):  # still under water at the end
        best = max(best, len(values) - peak_i)
    return best


# --- periods per year -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("freq", "expected"), [("1D", 365.0), ("1h", 8760.0), ("4h", 2190.0), ("1min", 525600.0)]
)
def test_periods_per_year_is_365_days_of_bars(freq: str, expected: float) -> None:
    index = pd.date_range("2024-01-01", periods=50, freq=freq, tz="UTC")
    assert periods_per_year(index) == pytest.approx(expected)


def test_periods_per_year_ignores_a_few_gaps() -> None:
    index = pd.date_range("2024-01-01", periods=100, freq="1h", tz="UTC").delete([10, 11, 50])
    assert periods_per_year(index) == pytest.approx(8760.0)


def test_periods_per_year_needs_two_bars() -> None:
    with pytest.raises(BadInputError, match="at least two bars"):
        periods_per_year(pd.date_range("2024-01-01", periods=1, freq="1h", tz="UTC"))


# --- return and risk metrics on a hand-worked curve --------------------------------------


def test_six_bar_curve_by_hand() -> None:
    m = compute_metrics(make_result(EQUITY6), **ANY_SPAN)
    rets = [0.0, 0.1, -0.1, 104.5 / 99 - 1, 120 / 104.5 - 1, -0.1]
    mean, sd = statistics.mean(rets), statistics.stdev(rets)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in rets) / 6)
    years = 6 / 365
    cagr = 1.08 ** (1 / years) - 1

    assert m["total_return"] == pytest.approx(0.08)
    assert m["final_equity"] == 108.0
    assert m["n_bars"] == 6
    assert m["periods_per_year"] == pytest.approx(365.0)
    assert m["cagr"] == pytest.approx(cagr)
    assert m["volatility"] == pytest.approx(sd * math.sqrt(365))
    assert m["sharpe"] == pytest.approx(mean / sd * math.sqrt(365))
    assert m["sortino"] == pytest.approx(mean / downside * math.sqrt(365))
    # Peaks 100, 110, 110, 110, 120, 120: worst is 99/110 - 1 = 108/120 - 1 = -10%.
    assert m["max_drawdown"] == pytest.approx(-0.1)
    # From the 110 peak (bar 1) to the bar that regains it (bar 4): 3 bars = 3 days.
    assert m["max_drawdown_bars"] == 3
    assert m["max_drawdown_days"] == pytest.approx(3.0)
    assert m["calmar"] == pytest.approx(cagr / 0.1)


def test_total_return_compounds_from_bar_returns() -> None:
    rng = np.random.default_rng(7)
    equity = CASH * np.cumprod(1 + rng.normal(0.0005, 0.01, 500))
    m = compute_metrics(make_result(equity, freq="1h"), **ANY_SPAN)
    first = equity[0] / CASH - 1  # the first bar is measured against the initial cash
    rets = np.concatenate(([first], equity[1:] / equity[:-1] - 1))
    assert m["total_return"] == pytest.approx(np.prod(1 + rets) - 1, rel=1e-12)
    assert m["sharpe"] == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(8760))


def test_sharpe_of_a_known_series() -> None:
    # Returns alternating +2% and -1%: mean 0.5%, sample sd 1.5 * sqrt(n / (n - 1)).
    n = 100
    rets = np.tile([0.02, -0.01], n // 2)
    equity = CASH * np.cumprod(1 + rets)
    m = compute_metrics(make_result(equity))
    sd = 0.015 * math.sqrt(n / (n - 1))
    assert m["sharpe"] == pytest.approx(0.005 / sd * math.sqrt(365), rel=1e-9)
    # Downside deviation: half the bars at -1%, target 0.
    assert m["sortino"] == pytest.approx(0.005 / math.sqrt(0.5 * 0.01**2) * math.sqrt(365))


def test_cagr_over_two_years_of_hourly_bars() -> None:
    n = 2 * 8760  # two 365-day years
    equity = CASH * np.exp(np.linspace(0, math.log(2), n + 1))[1:]  # doubles over the period
    m = compute_metrics(make_result(equity, freq="1h"))
    assert m["total_return"] == pytest.approx(1.0)
    assert m["cagr"] == pytest.approx(2 ** (1 / 2) - 1)
    assert m["max_drawdown"] == 0.0
    assert m["max_drawdown_bars"] == 0
    assert math.isnan(m["calmar"])  # no drawdown to divide by


def test_explicit_periods_per_year_overrides_the_index() -> None:
    m = compute_metrics(make_result(EQUITY6), periods_per_year=252, **ANY_SPAN)
    rets = [0.0, 0.1, -0.1, 104.5 / 99 - 1, 120 / 104.5 - 1, -0.1]
    assert m["periods_per_year"] == 252
    assert m["sharpe"] == pytest.approx(
        statistics.mean(rets) / statistics.stdev(rets) * math.sqrt(252)
    )
    assert m["cagr"] == pytest.approx(1.08 ** (365 / 6) - 1)  # calendar time: 6 days


def test_losing_everything_gives_cagr_minus_one() -> None:
    m = compute_metrics(make_result([50.0, 0.0, 0.0, 0.0]), **ANY_SPAN)
    assert m["total_return"] == -1.0
    assert m["cagr"] == -1.0
    assert m["max_drawdown"] == -1.0
    # Returns -50%, -100%, then 0 (a dead account stays dead, no 0/0).
    rets = [-0.5, -1.0, 0.0, 0.0]
    assert m["sharpe"] == pytest.approx(
        statistics.mean(rets) / statistics.stdev(rets) * math.sqrt(365)
    )


def test_flat_equity_has_undefined_ratios() -> None:
    m = compute_metrics(make_result([CASH] * 10), **ANY_SPAN)
    assert m["total_return"] == 0.0
    assert m["volatility"] == 0.0
    assert math.isnan(m["sharpe"])
    assert math.isnan(m["sortino"])
    assert math.isnan(m["calmar"])
    assert m["max_drawdown"] == 0.0


def test_one_bar_needs_periods_per_year() -> None:
    with pytest.raises(BadInputError, match="periods_per_year"):
        compute_metrics(make_result([101.0]))
    m = compute_metrics(make_result([101.0]), periods_per_year=365)
    assert m["total_return"] == pytest.approx(0.01)
    assert math.isnan(m["sharpe"])


# --- drawdown ------------------------------------------------------------------------------


def test_drawdown_series_by_hand() -> None:
    dd = drawdown(make_result(EQUITY6).equity, CASH)
    expected = [0.0, 0.0, 99 / 110 - 1, 104.5 / 110 - 1, 0.0, 108 / 120 - 1]
    np.testing.assert_allclose(dd.to_numpy(), expected)


def test_drawdown_counts_a_loss_from_the_initial_cash() -> None:
    result = make_result([90.0, 95.0, 80.0])
    assert compute_metrics(result)["max_drawdown"] == pytest.approx(-0.2)
    assert max_drawdown_duration(result.equity, CASH) == 3  # never regains 100


@pytest.mark.parametrize("seed", range(8))
def test_max_drawdown_duration_matches_a_naive_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = CASH * np.cumprod(1 + rng.normal(0.0, 0.02, 300))
    values[rng.integers(0, 300, 5)] = values.max() + 1  # exact new highs, including ties
    equity = make_result(values).equity
    assert max_drawdown_duration(equity, CASH) == naive_max_dd_duration(list(values), CASH)
    peak = np.maximum.accumulate(np.concatenate(([CASH], values)))[1:]
    assert compute_metrics(make_result(values))["max_drawdown"] == pytest.approx(
        min(v / p - 1 for v, p in zip(values, peak, strict=True))
    )


def test_max_drawdown_duration_in_days_follows_the_bar_length() -> None:
    m = compute_metrics(make_result(EQUITY6, freq="4h"))
    assert m["max_drawdown_bars"] == 3
    assert m["max_drawdown_days"] == pytest.approx(0.5)


# --- trade metrics, exposure, turnover, fees ------------------------------------------------


def test_trade_statistics_by_hand() -> None:
    trades = make_trades([10.0, -5.0, 20.0, -5.0], returns=[0.1, -0.05, 0.2, -0.05])
    m = compute_metrics(make_result(EQUITY6, trades=trades))
    assert m["n_trades"] == 4
    assert m["win_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(30.0 / 10.0)
    assert m["expectancy"] == pytest.approx(5.0)
    assert m["avg_trade_return"] == pytest.approx(0.05)


def test_no_trades_gives_nan_trade_statistics() -> None:
    m = compute_metrics(make_result(EQUITY6))
    assert m["n_trades"] == 0
    for key in ("win_rate", "profit_factor", "expectancy", "avg_trade_return"):
        assert math.isnan(m[key]), key
    assert m["fees_paid"] == 0.0
    assert m["turnover"] == 0.0


def test_no_losing_trades_gives_infinite_profit_factor() -> None:
    m = compute_metrics(make_result(EQUITY6, trades=make_trades([1.0, 2.0])))
    assert m["profit_factor"] == math.inf
    assert m["win_rate"] == 1.0


def test_exposure_turnover_and_fees() -> None:
    fills = pd.DataFrame(
        {
            "time": pd.date_range("2024-01-02", periods=4, freq="1D", tz="UTC"),
            "side": ["buy", "sell", "sell", "buy"],
            "size": [1.0, 1.0, 0.5, 0.5],
            "price": [100.0, 110.0, 104.0, 120.0],
            "fee": [0.1, 0.11, 0.052, 0.06],
            "reason": ["signal"] * 4,
        }
    )
    position = [0.0, 1.0, 1.0, 0.0, -0.5, 0.0]
    m = compute_metrics(make_result(EQUITY6, position=position, fills=fills))
    assert m["exposure"] == pytest.approx(3 / 6)
    notional = 100 + 110 + 52 + 60
    assert m["turnover"] == pytest.approx(notional / statistics.mean(EQUITY6))
    assert m["fees_paid"] == pytest.approx(0.1 + 0.11 + 0.052 + 0.06)


def test_funding_is_reported() -> None:
    index = pd.date_range("2024-01-01", periods=3, freq="1D", tz="UTC")
    base = make_result([100.0, 101.0, 102.0])
    result = BacktestResult(
        equity=base.equity,
        position=pd.Series(1.0, index=index),
        trades=base.trades,
        fills=base.fills,
        initial_cash=CASH,
        funding_paid=1.25,
    )
    assert compute_metrics(result)["funding_paid"] == 1.25


# --- monthly returns and JSON ----------------------------------------------------------------


def test_monthly_returns_compound_to_the_total() -> None:
    rng = np.random.default_rng(3)
    equity = CASH * np.cumprod(1 + rng.normal(0.001, 0.02, 400))  # Jan 2024 .. Feb 2025
    result = make_result(equity)
    table = monthly_returns(result.equity, CASH)
    assert list(table.columns) == list(range(1, 13))
    assert list(table.index) == [2024, 2025]
    assert table.loc[2024, 1] == pytest.approx(equity[30] / CASH - 1)  # Jan 31 close vs cash
    assert table.loc[2024, 2] == pytest.approx(equity[59] / equity[30] - 1)  # Feb 29 (leap)
    assert math.isnan(table.loc[2025, 12])  # not reached
    monthly = table.to_numpy().ravel()
    monthly = monthly[~np.isnan(monthly)]
    assert len(monthly) == 14
    assert np.prod(1 + monthly) - 1 == pytest.approx(equity[-1] / CASH - 1)


def test_to_jsonable_makes_strict_json() -> None:
    payload = {"a": math.nan, "b": math.inf, "c": np.float64(1.5), "d": [np.int64(2), -math.inf]}
    out = to_jsonable(payload)
    assert out == {"a": None, "b": None, "c": 1.5, "d": [2, None]}
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_metrics_of_a_no_trade_result_dump_as_strict_json() -> None:
    m = compute_metrics(make_result(EQUITY6))
    text = json.dumps(to_jsonable(m), allow_nan=False)
    assert json.loads(text)["win_rate"] is None
    assert json.loads(text)["total_return"] == pytest.approx(0.08)


def test_identical_runs_give_equal_metric_dicts_even_with_undefined_figures(ohlcv):
    """Undefined figures are ``math.nan`` itself, so ``==`` on two identical runs holds
    (NaN != NaN otherwise): 20 bars annualize nothing."""
    from cryptoai.backtest import run_strategy

    data = ohlcv(n=20, seed=4)
    a = compute_metrics(run_strategy(data, "buy_and_hold"))
    b = compute_metrics(run_strategy(data, "buy_and_hold"))
    assert math.isnan(a["sharpe"]) and a == b
