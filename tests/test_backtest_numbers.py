"""Numbers a referee would sign: sizing that waits for its inputs, calendar-time CAGR,
bars per year, minimum spans, one drawdown sign, prediction meaning, what a report states."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptoai.backtest.event import run_event
from cryptoai.backtest.metrics import compute_metrics, periods_per_year
from cryptoai.backtest.report import write_report
from cryptoai.backtest.runner import run_backtest
from cryptoai.backtest.sweeps import run_many
from cryptoai.backtest.vectorized import run_vectorized
from cryptoai.errors import BadInputError
from cryptoai.strategies.base import BaseStrategy
from cryptoai.strategies.model_signal import ModelSignal

NAN = math.nan


def walk(n: int, freq: str = "1h", seed: int = 3, drift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq=freq, tz="UTC", name="timestamp")
    close = 100 * np.exp(np.cumsum(rng.normal(drift, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": 10.0,
        },
        index=idx,
    )


class Targets(BaseStrategy):
    """The event engine fed the same targets as the vectorized one."""

    params = {"targets": None}

    def on_bar(self, ctx):
        return self.targets[ctx.i]


def from_curve(equity: np.ndarray, index: pd.DatetimeIndex, cash: float = 100.0):
    from cryptoai.backtest.result import FILL_COLUMNS, TRADE_COLUMNS, BacktestResult

    return BacktestResult(
        equity=pd.Series(equity, index=index, name="equity"),
        position=pd.Series(0.0, index=index),
        trades=pd.DataFrame(columns=list(TRADE_COLUMNS)),
        fills=pd.DataFrame(columns=list(FILL_COLUMNS)),
        initial_cash=cash,
    )


# --- 1. volatility targeting sizes as soon as the volatility is known ----------------------


def test_vol_target_benchmark_is_invested_from_the_first_bar_with_a_volatility():
    data = walk(60)
    cfg = {"size": "vol_target", "size_value": 0.5, "vol_window": 10}
    result, bench = run_backtest(data, "buy_and_hold", None, cfg)
    # the decision at bar 0 waits: bars 1 and 2 have fewer than two known returns
    assert len(bench.fills) == 2  # the entry and the close at the end
    assert bench.fills["time"].iloc[0] == data.index[3]
    assert (bench.position.iloc[3:-1] > 0).all() and (bench.position.iloc[:3] == 0).all()
    ev = run_event(data, Targets(targets=[1.0] * len(data)), cfg)
    pd.testing.assert_frame_equal(ev.fills, bench.fills)


def test_vol_target_strategy_long_from_bar_zero_is_sized_when_it_can_be():
    data = walk(40)
    target = np.r_[1.0, np.full(39, NAN)]
    r = run_vectorized(data, target, {"size": "vol_target", "size_value": 0.3, "vol_window": 5})
    assert r.fills["time"].iloc[0] == data.index[3] and r.fills["side"].iloc[0] == "buy"


# --- 4. one drawdown sign ------------------------------------------------------------------


def test_run_many_drawdown_is_negative_like_compute_metrics():
    data = walk(300)
    targets = np.vstack([np.where(np.arange(300) % 40 < 20, 1.0, 0.0), np.ones(300)])
    stats = run_many(data, targets)
    for row, tgt in zip(stats.itertuples(), targets, strict=True):
        single = compute_metrics(run_vectorized(data, tgt), min_days=0, min_bars=0)
        assert row.max_drawdown < 0
        assert row.max_drawdown == pytest.approx(single["max_drawdown"], rel=1e-9)


# --- 2. CAGR over calendar time, bars per year ---------------------------------------------


def test_cagr_uses_calendar_time_on_business_day_data():
    index = pd.bdate_range("2020-01-01", periods=3 * 252, tz="UTC", name="timestamp")
    equity = 100 * np.exp(np.linspace(0, math.log(2), len(index) + 1))[1:]  # doubles
    m = compute_metrics(from_curve(equity, index))
    span = (index[-1] - index[0] + pd.Timedelta(days=1)) / pd.Timedelta(days=1)
    assert m["span_days"] == pytest.approx(span)
    assert m["cagr"] == pytest.approx(2 ** (365 / span) - 1)  # not 2 ** (252 / 756) - 1
    # the market closes at weekends: the observed bars per year, not 365
    assert m["periods_per_year"] == pytest.approx(len(index) / (span / 365))
    assert 255 < m["periods_per_year"] < 265


def test_bars_per_year_of_timeframes():
    hourly = pd.date_range("2024-01-01", periods=24 * 60, freq="1h", tz="UTC")
    assert compute_metrics(from_curve(np.full(len(hourly), 100.0), hourly))[
        "periods_per_year"
    ] == pytest.approx(8760)
    monthly = pd.date_range("2020-01-01", periods=36, freq="MS", tz="UTC")
    assert periods_per_year(monthly) == 12.0
    m = compute_metrics(from_curve(np.linspace(101, 150, 36), monthly))
    assert m["periods_per_year"] == 12.0
    m = compute_metrics(from_curve(np.linspace(101, 150, 36), monthly), periods_per_year=10)
    assert m["periods_per_year"] == 10.0


# --- 3. no annualized numbers on tiny samples ---------------------------------------------


def test_ten_hourly_bars_have_no_annualized_figures(tmp_path: Path):
    data = walk(10)
    result, bench = run_backtest(data, "buy_and_hold")
    m = compute_metrics(result)
    for key in ("cagr", "volatility", "sharpe", "sortino", "calmar"):
        assert math.isnan(m[key]), key
    assert not math.isnan(m["total_return"]) and not math.isnan(m["max_drawdown"])
    paths = write_report(result, bench, data, tmp_path)
    text = paths["report"].read_text()
    assert "**Short sample**" in text and "| CAGR | n/a |" in text


# --- 8. predictions carry their meaning ----------------------------------------------------


def test_model_signal_refuses_unlabelled_values_outside_probabilities():
    data = walk(50)
    scores = pd.Series(np.linspace(-0.9, 0.9, 50), index=data.index)
    with pytest.raises(BadInputError, match="outside"):
        ModelSignal(predictions=scores).signals(data)


def test_model_signal_converts_a_score_to_probability_thresholds(caplog):
    data = walk(50)
    values = np.linspace(-0.9, 0.9, 50)
    scores = pd.Series(values, index=data.index, name="score")  # TrainResult.signal
    with caplog.at_level(logging.WARNING):
        target = ModelSignal(predictions=scores, long_above=0.55).signals(data)
    assert "scores" in caplog.text
    np.testing.assert_array_equal(target.to_numpy(), ((values + 1) / 2 > 0.55).astype(float))
    labelled = pd.Series(values, index=data.index)
    labelled.attrs["meaning"] = "score"
    same = ModelSignal(predictions=labelled, long_above=0.1, scale="score").signals(data)
    np.testing.assert_array_equal(same.to_numpy(), (values > 0.1).astype(float))


# --- 10. hysteresis and what a report states -----------------------------------------------


def test_model_signal_min_hold_and_exit_threshold_by_hand():
    data = walk(8)
    pred = pd.Series([0.6, 0.5, 0.6, 0.52, 0.49, 0.6, 0.4, 0.4], index=data.index)
    plain = ModelSignal(predictions=pred, long_above=0.55).signals(data)
    assert plain.tolist() == [1, 0, 1, 0, 0, 1, 0, 0]
    hyst = ModelSignal(predictions=pred, long_above=0.55, long_exit=0.5).signals(data)
    assert hyst.tolist() == [1, 0, 1, 1, 0, 1, 0, 0]
    held = ModelSignal(predictions=pred, long_above=0.55, min_hold=3).signals(data)
    assert held.tolist() == [1, 1, 1, 0, 0, 1, 1, 1]
    ev = run_event(data, ModelSignal(predictions=pred, long_above=0.55, min_hold=3))
    vec = run_vectorized(data, held)
    pd.testing.assert_frame_equal(ev.fills, vec.fills)


def test_report_states_period_gross_costs_and_settings(tmp_path: Path):
    data = walk(24 * 40, drift=0.0002)
    target = np.where((np.arange(len(data)) // 12) % 2 == 0, 1.0, 0.0)
    result = run_vectorized(data, target, {"fee_bps": 20.0}, name="toggle")
    bench = run_vectorized(data, np.ones(len(data)), {"fee_bps": 20.0}, name="buy and hold")
    (tmp_path / "signal.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    paths = write_report(result, bench, data, tmp_path, period_label="out-of-sample test folds")
    text = paths["report"].read_text()
    assert "Period (out-of-sample test folds):" in text
    assert "gross of costs |" in text and "![Signal](signal.png)" in text
    assert "maker fee 2.0 bps" in text and "Cost model: **fixed**" in text
    saved = json.loads(paths["metrics"].read_text())
    assert saved["execution_settings"]["fee_bps"] == 20.0
    assert saved["cost_model"] == "fixed" and saved["period_label"] == "out-of-sample test folds"
    assert isinstance(saved["n_trades"], int) and isinstance(saved["n_bars"], int)
    assert isinstance(saved["max_drawdown_bars"], int)
    gross = saved["gross_of_costs"]
    free = run_vectorized(
        data, target, {"fee_bps": 0, "maker_fee_bps": 0, "slippage_bps": 0}, name="g"
    )
    assert gross["total_return"] == pytest.approx(free.final_equity / 10_000 - 1)
    assert gross["total_return"] > saved["total_return"]
    assert gross["n_trades"] == saved["n_trades"]
