"""The numbers notebooks save to metrics.json, on small frames computed by hand here."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cryptoai.errors import BadInputError
from cryptoai.research import eda, summaries


def bars(close: list[float], start: str = "2024-01-01") -> pd.DataFrame:
    close_ = np.asarray(close, dtype="float64")
    open_ = np.concatenate(([close_[0]], close_[:-1]))
    idx = pd.date_range(start, periods=len(close_), freq="1h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close_) + 0.5,
            "low": np.minimum(open_, close_) - 0.5,
            "close": close_,
            "volume": 1.0,
        },
        index=idx,
    )


# ---------------------------------------------------------------------------- 01
def test_data_summary_counts_gaps_and_matches_hand_statistics():
    a_close = [100, 101, 99, 102, 103, 101, 104, 105, 103, 106]
    b_close = [50, 50.5, 50.2, 51, 51.5, 51, 52, 52.5, 52, 53]
    a = bars(a_close)
    b = bars(b_close).drop(index=bars(b_close).index[[3, 4]])  # one 2-bar gap
    frames = {"BTC/USDT": a, "ETH/USDT": b}
    quality = eda.data_quality_table(frames, "1h")
    stats = eda.return_stats(frames, 8760.0)
    alignment = eda.alignment_table(frames)
    corr = eda.log_returns(frames).corr()
    m = summaries.data_summary(quality, stats, alignment, corr, {"ETH/USDT": ["flat candle"]})

    assert m["symbols"] == 2 and m["common_bars"] == 8
    assert m["BTC-USDT.bars"] == 10 and m["ETH-USDT.bars"] == 8
    assert m["BTC-USDT.gaps"] == 0 and m["ETH-USDT.gaps"] == 1
    assert m["ETH-USDT.missing_pct"] == pytest.approx(100 * 2 / 10)
    assert m["BTC-USDT.contract_ok"] == 1.0 and m["ETH-USDT.duplicates"] == 0
    assert m["BTC-USDT.anomalies"] == 0 and m["ETH-USDT.anomalies"] == 1
    r = np.diff(np.log(a_close))
    assert m["BTC-USDT.ann_volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(8760))
    assert m["BTC-USDT.excess_kurtosis"] == pytest.approx(pd.Series(r).kurt())
    # Correlation on the 8 shared bars: the returns between consecutive shared bars.
    shared = [0, 1, 2, 5, 6, 7, 8, 9]
    ra = np.diff(np.log(np.take(a_close, shared)))
    rb = np.diff(np.log(np.take(b_close, shared)))
    assert m["corr.BTC-USDT.ETH-USDT"] == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    assert "corr.ETH-USDT.BTC-USDT" not in m  # each pair once


# ---------------------------------------------------------------------------- 02
def test_feature_summary_by_hand():
    idx = pd.date_range("2024-01-01", periods=6, freq="1h", tz="UTC")
    raw = pd.DataFrame(
        {
            "a": [np.nan, 1.0, 2.0, 3.0, 4.0, 5.0],
            "b": [np.nan, np.nan, np.nan, 2.0, 1.0, 0.0],
            "c": [np.nan, np.nan, 1.0, 3.0, 2.0, 4.0],
        },
        index=idx,
    )
    X = raw.iloc[3:]
    y = pd.Series([1.0, 0.0, 1.0], index=X.index)
    ic = pd.Series({"a": 0.2, "b": -0.5, "c": 0.1})
    m = summaries.feature_summary(
        raw, X, y, ic, kept=["a", "c"], selected=["a"], task="classification"
    )
    assert m["n_features"] == 3 and m["n_bars"] == 6 and m["n_rows"] == 3
    assert m["warmup_bars"] == 3  # b starts at the fourth bar
    assert m["n_after_correlation_pruning"] == 2 and m["n_selected"] == 1
    assert m["max_abs_correlation"] == pytest.approx(1.0)  # a and b are exact opposites
    assert m["mean_abs_ic"] == pytest.approx((0.2 + 0.5 + 0.1) / 3)
    assert m["max_abs_ic"] == pytest.approx(0.5)
    assert m["majority_share"] == pytest.approx(2 / 3)
    reg = summaries.feature_summary(raw, X, y, ic, kept=[], selected=[], task="regression")
    assert "majority_share" not in reg


def test_feature_summary_largest_correlation_is_off_the_diagonal():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["x", "y", "z"])
    X["y"] = X["x"] * 0.5 + rng.normal(size=200)
    m = summaries.feature_summary(
        X,
        X,
        pd.Series(1.0, index=X.index),
        pd.Series(0.0, index=list(X)),
        kept=[],
        selected=[],
        task="regression",
    )
    expected = max(
        abs(np.corrcoef(X[p], X[q])[0, 1]) for p, q in [("x", "y"), ("x", "z"), ("y", "z")]
    )
    assert m["max_abs_correlation"] == pytest.approx(expected) and expected < 0.9


# ---------------------------------------------------------------------------- 03
def test_model_summary_keys_and_values():
    def result(aggregate, n_pred=0, n_folds=0, baseline=None):
        return SimpleNamespace(
            aggregate=aggregate,
            baseline_aggregate=baseline or {},
            predictions=pd.DataFrame(index=range(n_pred)),
            folds=pd.DataFrame(index=range(n_folds)),
        )

    main = result({"accuracy": 0.6, "ic": 0.05}, 40, 2, {"accuracy": 0.5})
    other = result({"accuracy": 0.55})
    m = summaries.model_summary(
        main, {"logreg": main, "xgb": other}, {"logreg": 1.5, "xgb": 3.0}, ["accuracy", "ic"]
    )
    assert m["accuracy"] == 0.6 and m["ic"] == 0.05 and m["baseline.accuracy"] == 0.5
    assert m["compare.xgb.accuracy"] == 0.55 and math.isnan(m["compare.xgb.ic"])
    assert m["compare.logreg.seconds"] == 1.5 and m["compare.xgb.seconds"] == 3.0
    assert m["n_predictions"] == 40 and m["n_folds"] == 2


# ---------------------------------------------------------------------------- 04
def test_backtest_summary_is_the_edge_over_buy_and_hold():
    m = summaries.backtest_summary(
        {"total_return": 0.12, "sharpe": 1.5},
        {"total_return": 0.20, "sharpe": 0.9},
        n_predictions=300,
        predictions_from_03=True,
    )
    assert m == pytest.approx(
        {
            "excess_return": -0.08,
            "excess_sharpe": 0.6,
            "n_predictions": 300,
            "predictions_from_03": 1.0,
        }
    )


# ---------------------------------------------------------------------------- 05
def regime_table(rows: dict[str, tuple[float, float, float, float]]) -> pd.DataFrame:
    """label -> (strategy sharpe, strategy return, benchmark return, signal ic)."""
    columns = pd.MultiIndex.from_tuples(
        [
            ("strategy", "sharpe"),
            ("strategy", "total_return"),
            ("benchmark", "total_return"),
            ("signal", "ic"),
        ]
    )
    return pd.DataFrame(list(rows.values()), index=list(rows), columns=columns)


def test_robustness_summary_by_hand():
    periods = pd.DataFrame(
        {
            "strategy_total_return": [0.10, -0.05, 0.02, 0.04],
            "excess_return": [0.03, 0.01, -0.02, 0.0],
        }
    )
    regimes = {"volatility": regime_table({"low vol": (1.2, 0.05, 0.01, 0.1)})}
    thresholds = pd.DataFrame({"sharpe": [0.5, -1.0, 2.0], "total_return": [0.1, -0.2, 0.0]})
    costs = pd.DataFrame(
        {
            "fee_bps": [0.0, 0.0, 10.0, 10.0],
            "slippage_bps": [2.0, 0.0, 0.0, 2.0],
            "total_return": [0.07, 0.08, 0.03, 0.01],
        }
    )
    ablated = pd.DataFrame(
        {"balanced_accuracy": [0.56, 0.50, 0.58]},
        index=["all features", "without rsi", "without sma"],
    )
    m = summaries.robustness_summary(
        periods, regimes, costs, thresholds=thresholds, ablated=ablated
    )
    assert m["periods.n"] == 4
    assert m["periods.share_beating_benchmark"] == 0.5  # 0.03 and 0.01; 0.0 is not beating
    assert m["periods.share_positive"] == 0.75
    assert m["periods.worst_return"] == -0.05
    assert m["periods.excess_return_std"] == pytest.approx(
        math.sqrt(sum((x - 0.005) ** 2 for x in [0.03, 0.01, -0.02, 0.0]) / 3)
    )
    assert m["regime.volatility.low_vol.sharpe"] == 1.2
    assert m["regime.volatility.low_vol.excess_return"] == pytest.approx(0.04)
    assert m["regime.volatility.low_vol.ic"] == 0.1
    assert m["thresholds.n"] == 3 and m["thresholds.best_sharpe"] == 2.0
    assert m["thresholds.worst_sharpe"] == -1.0
    assert m["thresholds.share_positive_return"] == pytest.approx(1 / 3)
    assert m["costs.zero_cost_return"] == 0.08  # the row with no fee and no slippage
    assert m["costs.worst_return"] == 0.01
    assert m["ablation.all.balanced_accuracy"] == 0.56
    assert m["ablation.rsi.loss"] == pytest.approx(0.06)
    assert m["ablation.sma.loss"] == pytest.approx(-0.02)  # removing sma helps


def test_robustness_summary_optional_parts_and_errors():
    periods = pd.DataFrame({"strategy_total_return": [0.1], "excess_return": [0.02]})
    costs = pd.DataFrame({"fee_bps": [0.0], "slippage_bps": [0.0], "total_return": [0.1]})
    m = summaries.robustness_summary(periods, {}, costs)
    assert math.isnan(m["periods.excess_return_std"])  # one period has no spread
    assert not any(k.startswith(("thresholds.", "ablation.")) for k in m)
    with pytest.raises(BadInputError, match="fee_bps=0 and slippage_bps=0"):
        summaries.robustness_summary(periods, {}, costs.assign(fee_bps=5.0))
    with pytest.raises(BadInputError, match="all features"):
        summaries.ablation_loss(pd.DataFrame({"ic": [0.1]}, index=["without x"]), "ic")
