"""Robustness checks: predictions to trades, periods, regimes, parameter variation, ablation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cryptoai.backtest.metrics import compute_metrics, periods_per_year
from cryptoai.data.sources.synthetic import synthetic_ohlcv
from cryptoai.errors import BadInputError
from cryptoai.features.spec import load_feature_spec
from cryptoai.modeling.training import TrainConfig
from cryptoai.research import robustness as rb
from cryptoai.research.experiment_config import BacktestSpec

SPEC = BacktestSpec(params={"long_above": 0.55, "short_below": 0.45})


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return synthetic_ohlcv("BTC/USDT", "1h", "2024-01-01", "2024-01-15")


def random_signal(index: pd.DatetimeIndex, seed: int = 0) -> pd.Series:
    return pd.Series(np.random.default_rng(seed).uniform(0.3, 0.7, len(index)), index=index)


# ------------------------------------------------------------------ predictions
def test_prediction_signal_by_model_kind():
    idx = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC")
    binary = pd.DataFrame(
        {"score": [0.2, -0.4, 0.0], "proba_0": [0.4, 0.7, 0.5], "proba_1": [0.6, 0.3, 0.5]}, idx
    )
    assert rb.prediction_signal(binary).tolist() == [0.6, 0.3, 0.5]  # P(up)
    barrier = binary.assign(**{"proba_-1": [0.1, 0.1, 0.1]})
    assert rb.prediction_signal(barrier).tolist() == [0.2, -0.4, 0.0]  # expected direction
    regression = pd.DataFrame({"pred": [0.01, -0.02, 0.0], "score": [0.01, -0.02, 0.0]}, idx)
    assert rb.prediction_signal(regression).tolist() == [0.01, -0.02, 0.0]
    with pytest.raises(BadInputError, match="score"):
        rb.prediction_signal(pd.DataFrame({"pred": [1.0]}))


def test_predictions_are_reused_only_for_the_same_config(tmp_path, bars):
    cfg = TrainConfig(name="a", model={"name": "logreg"})
    idx = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC", name="timestamp")
    preds = pd.DataFrame({"score": [0.1, -0.1, 0.2, 0.0], "fold": [0, 0, 1, 1]}, idx)
    assert rb.load_predictions(cfg, tmp_path, bars) is None
    rb.save_predictions(preds, cfg, tmp_path, bars)
    loaded = rb.load_predictions(cfg, tmp_path, bars)
    pd.testing.assert_frame_equal(loaded, preds, check_freq=False)
    # a scratch folder does not matter, the model does
    moved = cfg.model_copy(update={"output_dir": "elsewhere", "fit_final": False})
    assert rb.load_predictions(moved, tmp_path, bars) is not None
    other = TrainConfig(name="a", model={"name": "logreg", "params": {"C": 0.5}})
    assert rb.load_predictions(other, tmp_path, bars) is None
    reseeded = cfg.model_copy(update={"seed": 1})
    assert rb.predictions_key(cfg, bars) != rb.predictions_key(reseeded, bars)


def test_backtest_window_covers_the_predicted_bars(bars):
    preds = pd.DataFrame({"score": 0.0}, index=bars.index[100:200])
    window = rb.backtest_window(bars, preds)
    assert window.index[0] == bars.index[100] and window.index[-1] == bars.index[199]
    with pytest.raises(BadInputError, match="fewer than two"):
        rb.backtest_window(bars, preds.iloc[:1])
    with pytest.raises(BadInputError, match="notebook 03"):
        rb.backtest_window(bars, preds.iloc[:0])


# ------------------------------------------------------------------ backtests
def test_always_confident_model_is_buy_and_hold(bars):
    result, bench = rb.model_backtest(bars, pd.Series(0.9, bars.index), SPEC)
    pd.testing.assert_series_equal(result.equity, bench.equity, check_names=False)
    assert bench.name == "buy_and_hold" and result.name == "model_signal"
    flat, _ = rb.model_backtest(bars, pd.Series(0.5, bars.index), SPEC)  # never confident
    assert len(flat.trades) == 0
    assert (flat.equity == SPEC.initial_cash).all()


def test_model_backtest_applies_costs_and_changes(bars):
    signal = random_signal(bars.index)
    base, _ = rb.model_backtest(bars, signal, SPEC)
    free, free_bench = rb.model_backtest(bars, signal, SPEC, fee_bps=0.0, slippage_bps=0.0)
    assert compute_metrics(free)["fees_paid"] == 0.0
    assert compute_metrics(base)["fees_paid"] > 0.0
    assert free.final_equity > base.final_equity  # same trades, no costs
    assert len(free.trades) == len(base.trades)
    assert compute_metrics(free_bench)["fees_paid"] == 0.0  # the benchmark pays the same costs
    longer, _ = rb.model_backtest(bars, signal, SPEC, long_above=0.65, short_below=0.35)
    assert len(longer.trades) < len(base.trades)
    with pytest.raises(BadInputError, match="neither a parameter"):
        rb.model_backtest(bars, signal, SPEC, threshold=0.5)


def test_split_periods():
    idx = pd.date_range("2024-01-01", periods=10, freq="h", tz="UTC")
    parts = rb.split_periods(idx, 3)
    assert [len(p) for p in parts] == [4, 3, 3]
    assert parts[0].append(parts[1:]).equals(idx)
    for bad in (0, 6, 1.5):
        with pytest.raises(BadInputError):
            rb.split_periods(idx, bad)


def test_period_backtests(bars):
    signal = random_signal(bars.index)
    one = rb.period_backtests(bars, signal, SPEC, 1)
    result, bench = rb.model_backtest(bars, signal, SPEC)
    ppy = periods_per_year(bars.index)
    assert one.loc[0, "strategy_total_return"] == pytest.approx(
        compute_metrics(result, ppy)["total_return"]
    )
    # 14 days: below the minimum span, so both Sharpe figures are NaN (docs/metrics.md)
    assert one.loc[0, "benchmark_sharpe"] == pytest.approx(
        compute_metrics(bench, ppy)["sharpe"], nan_ok=True
    )
    four = rb.period_backtests(bars, signal, SPEC, 4)
    assert len(four) == 4 and four["bars"].sum() == len(bars)
    assert (four["start"].iloc[1:].to_numpy() > four["end"].iloc[:-1].to_numpy()).all()
    np.testing.assert_allclose(
        four["excess_return"], four["strategy_total_return"] - four["benchmark_total_return"]
    )
    always = rb.period_backtests(bars, pd.Series(0.9, bars.index), SPEC, 3)
    np.testing.assert_allclose(always["strategy_total_return"], always["benchmark_total_return"])


# ------------------------------------------------------------------ regimes
def test_volatility_regimes_find_the_volatile_half():
    rng = np.random.default_rng(1)
    r = np.concatenate([rng.normal(0, 0.001, 300), rng.normal(0, 0.02, 300)])
    idx = pd.date_range("2024-01-01", periods=600, freq="h", tz="UTC")
    close = pd.Series(100 * np.exp(np.cumsum(r)), idx)
    labels = rb.volatility_regimes(close, 20)
    assert labels.iloc[:20].isna().all() and labels.iloc[20:].notna().all()
    counts = labels.value_counts()
    assert counts.max() - counts.min() <= 1  # equally populated
    assert (labels.iloc[330:] == "high vol").mean() > 0.6
    assert (labels.iloc[20:290] == "high vol").sum() == 0
    with pytest.raises(BadInputError):
        rb.volatility_regimes(close.iloc[:10], 20)


def test_trend_regimes_by_hand():
    close = pd.Series([10.0, 11.0, 9.0, 12.0, 12.0, 8.0])
    labels = rb.trend_regimes(close, 2)
    assert labels.iloc[:2].isna().all()
    assert labels.iloc[2:].tolist() == ["down", "up", "up", "down"]  # vs 2 bars earlier


def test_metrics_by_label_by_hand():
    idx = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    equity = pd.Series([110.0, 99.0, 99.0, 108.9], idx)  # returns +10%, -10%, 0%, +10%
    labels = pd.Series(["a", "b", "a", "b"], idx, name="regime")
    table = rb.metrics_by_label(equity, 100.0, labels, periods_per_year=4.0)
    assert table.loc["a", "total_return"] == pytest.approx(0.10)  # +10% then 0%
    assert table.loc["b", "total_return"] == pytest.approx(0.9 * 1.1 - 1)
    assert table.loc["a", "share"] == 0.5
    r_a = np.array([0.1, 0.0])
    assert table.loc["a", "sharpe"] == pytest.approx(r_a.mean() / r_a.std(ddof=1) * 2.0)
    assert table.index.name == "regime"


def test_signal_quality_by_label_matches_scipy():
    rng = np.random.default_rng(2)
    idx = pd.date_range("2024-01-01", periods=200, freq="h", tz="UTC")
    ret = rng.normal(size=200)
    score = np.where(np.arange(200) < 100, ret, -ret) + rng.normal(0, 0.5, 200)
    preds = pd.DataFrame({"score": score, "forward_return": ret}, idx)
    labels = pd.Series(np.where(np.arange(200) < 100, "good", "bad"), idx)
    table = rb.signal_quality_by_label(preds, labels)
    good = slice(0, 100)
    assert table.loc["good", "ic"] == pytest.approx(stats.spearmanr(score[good], ret[good])[0])
    hits = np.mean(np.sign(score[good]) == np.sign(ret[good]))
    assert table.loc["good", "hit_rate"] == pytest.approx(hits)
    assert table.loc["good", "ic"] > 0.5 > -0.5 > table.loc["bad", "ic"]
    with pytest.raises(BadInputError, match="forward_return"):
        rb.signal_quality_by_label(preds[["score"]], labels)


# --------------------------------------------------------- parameter variation
def test_parameter_variation_matches_single_backtests(bars):
    signal = random_signal(bars.index)
    grid = {"long_above": [0.55, 0.6], "short_below": [0.4, 0.58], "fee_bps": [0.0, 10.0]}
    table = rb.parameter_variation(bars, signal, SPEC, grid)
    # short_below=0.58 above long_above=0.55 is rejected by the strategy: 2 x 2 x 2 - 2
    assert len(table) == 6
    for _, row in table.iterrows():
        single, _ = rb.model_backtest(
            bars, signal, SPEC, long_above=row["long_above"], short_below=row["short_below"],
            fee_bps=row["fee_bps"],
        )  # fmt: skip
        assert row["final_equity"] == pytest.approx(single.final_equity, rel=1e-9)
        assert row["n_trades"] == len(single.trades)
    by_fee = table.set_index(["long_above", "short_below", "fee_bps"])["final_equity"]
    assert by_fee[(0.55, 0.4, 0.0)] > by_fee[(0.55, 0.4, 10.0)]
    with pytest.raises(BadInputError, match="neither a parameter"):
        rb.parameter_variation(bars, signal, SPEC, {"size_of_bet": [1.0]})
    with pytest.raises(BadInputError, match="no values"):
        rb.parameter_variation(bars, signal, SPEC, {"fee_bps": []})


# --------------------------------------------------------------- ablation
def test_feature_groups_cover_the_spec():
    spec = load_feature_spec("configs/features/default.yaml")
    groups = rb.feature_groups(spec)
    assert groups["log_returns"] == ["ret_log_1", "ret_log_4", "ret_log_24"]
    assert len(groups) == len({item.name for item in spec.features})
    grouped = [c for cols in groups.values() for c in cols]
    assert sorted(grouped) == sorted(spec.columns())  # every column in exactly one group


def test_feature_ablation_finds_the_informative_feature():
    rng = np.random.default_rng(4)
    n = 900
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    X = pd.DataFrame(
        {"info": rng.normal(size=n), "noise_a": rng.normal(size=n), "noise_b": rng.normal(size=n)},
        idx,
    )
    forward = pd.Series(0.8 * X["info"].to_numpy() + rng.normal(0, 0.6, n), idx)
    y = (forward > 0).astype(float)
    cfg = TrainConfig(name="t", model={"name": "logreg"}, validation={"n_splits": 3})
    groups = {"info": ["info"], "noise": ["noise_a", "noise_b"]}
    table = rb.feature_ablation(cfg, X, y, forward, groups)
    assert list(table.index) == ["all features", "without info", "without noise"]
    assert table["n_features"].tolist() == [3, 2, 1]
    assert table.loc["all features", "accuracy"] > 0.75
    assert table.loc["without info", "accuracy"] < 0.6  # the signal is gone
    assert (
        abs(table.loc["without noise", "accuracy"] - table.loc["all features", "accuracy"]) < 0.03
    )
    assert table.loc["all features", "n_predicted"] == 3 * ((n - 1) // 4)  # 3 test blocks
    with pytest.raises(BadInputError, match="not in the features"):
        rb.feature_ablation(cfg, X, y, forward, {"x": ["missing"]})
