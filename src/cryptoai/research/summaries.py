"""The numbers each notebook saves to ``metrics.json``, computed from the tables it showed.

The experiment runner logs these keys to MLflow and compares runs by them, so they are
computed here, tested, and not in a notebook cell: one notebook's ``metrics.json`` keys are
exactly the keys of its summary function. Every function is pure and returns a flat
``{name: number}`` mapping (``NotebookOutputs.metrics`` stores NaN as null).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cryptoai.data.symbols import path_safe
from cryptoai.errors import BadInputError

if TYPE_CHECKING:
    from cryptoai.modeling.training import TrainResult

__all__ = [
    "ablation_loss",
    "backtest_summary",
    "data_summary",
    "feature_summary",
    "model_summary",
    "robustness_summary",
]

ALL_FEATURES = "all features"


# ---------------------------------------------------------------- 01 data exploration
def data_summary(
    quality: pd.DataFrame,
    stats: pd.DataFrame,
    alignment: pd.DataFrame,
    correlation: pd.DataFrame,
    anomalies: Mapping[str, Sequence[str]],
) -> dict[str, float]:
    """Per series (``BTC-USDT.bars`` ...): coverage, gaps, duplicates, contract, volatility,
    fat tails and anomalies; the bars all series share; each pair's return correlation.

    Takes ``eda.data_quality_table``, ``eda.return_stats``, ``eda.alignment_table``, the
    correlation of ``eda.log_returns`` and ``quality.anomalies`` per series.
    """
    names = list(quality.index)
    out: dict[str, float] = {
        "symbols": len(names),
        "common_bars": int(alignment["in_common"].iloc[0]),
    }
    for name in names:
        key = path_safe(name)
        q, s = quality.loc[name], stats.loc[name]
        out |= {
            f"{key}.bars": q["bars"],
            f"{key}.missing_pct": q["missing_pct"],
            f"{key}.gaps": q["gaps"],
            f"{key}.duplicates": q["duplicates"],
            f"{key}.contract_ok": float(q["contract_ok"]),
            f"{key}.ann_volatility": s["ann_volatility"],
            f"{key}.excess_kurtosis": s["excess_kurtosis"],
            f"{key}.anomalies": len(anomalies.get(name, ())),
        }
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            out[f"corr.{path_safe(a)}.{path_safe(b)}"] = correlation.loc[a, b]
    return out


# ------------------------------------------------------------- 02 feature engineering
def feature_summary(
    raw: pd.DataFrame,
    features: pd.DataFrame,
    target: pd.Series,
    ic: pd.Series,
    *,
    kept: Sequence[str],
    selected: Sequence[str],
    task: str,
) -> dict[str, float]:
    """Size of the feature set, its warm-up, redundancy (largest off-diagonal |corr|), the
    information coefficients, how many features each selection step kept, and for a
    classifier the majority class's share (the accuracy to beat).

    ``raw`` is the spec on every bar (warm-up included), ``features``/``target`` what the
    model trains on (``build_dataset``), ``ic`` from ``eda.feature_target_ic``.
    """
    finite = np.isfinite(raw.to_numpy(dtype="float64"))
    leading = np.where(finite.any(axis=0), finite.argmax(axis=0), len(raw))
    corr = features.corr().abs().to_numpy(copy=True)
    np.fill_diagonal(corr, np.nan)
    out: dict[str, float] = {
        "n_features": features.shape[1],
        "n_bars": len(raw),
        "n_rows": len(features),
        "warmup_bars": int(leading.max()) if leading.size else 0,
        "n_after_correlation_pruning": len(kept),
        "n_selected": len(selected),
        "max_abs_correlation": float(np.nanmax(corr)) if features.shape[1] > 1 else np.nan,
        "mean_abs_ic": float(ic.abs().mean()),
        "max_abs_ic": float(ic.abs().max()),
    }
    if task == "classification":
        out["majority_share"] = float(target.value_counts(normalize=True).max())
    return out


# --------------------------------------------------------------- 03 model prototyping
def model_summary(
    main: TrainResult,
    results: Mapping[str, TrainResult],
    seconds: Mapping[str, float],
    headline: Sequence[str],
) -> dict[str, float]:
    """The experiment's model (its out-of-sample metrics as per-fold means, unprefixed, as the runner
    judges them), the naive baseline's (``baseline.``), each candidate's headline metrics
    and training time (``compare.NAME.``), and how many predictions and folds there were."""
    out: dict[str, float] = dict(main.aggregate)
    out |= {f"baseline.{k}": v for k, v in main.baseline_aggregate.items()}
    for name, result in results.items():
        out |= {f"compare.{name}.{m}": result.aggregate.get(m, np.nan) for m in headline}
        out[f"compare.{name}.seconds"] = seconds[name]
    out |= {"n_predictions": len(main.predictions), "n_folds": len(main.folds)}
    return out


# -------------------------------------------------------------------- 04 backtesting
def backtest_summary(
    strategy: Mapping[str, Any],
    benchmark: Mapping[str, Any],
    *,
    n_predictions: int,
    predictions_from_03: bool,
) -> dict[str, float]:
    """What the strategy adds over buy-and-hold on the same bars and costs (return and
    Sharpe), beside ``write_report``'s metrics, and where its predictions came from."""
    return {
        "excess_return": strategy["total_return"] - benchmark["total_return"],
        "excess_sharpe": strategy["sharpe"] - benchmark["sharpe"],
        "n_predictions": n_predictions,
        "predictions_from_03": float(predictions_from_03),
    }


# --------------------------------------------------------------------- 05 robustness
def ablation_loss(ablated: pd.DataFrame, metric: str) -> pd.Series:
    """How much ``metric`` falls when each feature group is removed (positive: the group
    helps), indexed by group name; from ``robustness.feature_ablation``'s table."""
    if ALL_FEATURES not in ablated.index:
        raise BadInputError(f"the ablation table has no {ALL_FEATURES!r} row to compare with")
    others = ablated[metric].drop(ALL_FEATURES)
    loss = ablated.loc[ALL_FEATURES, metric] - others
    return loss.set_axis([str(n).removeprefix("without ") for n in others.index]).rename(
        f"{metric}_loss"
    )


def robustness_summary(
    periods: pd.DataFrame,
    regimes: Mapping[str, pd.DataFrame],
    costs: pd.DataFrame,
    *,
    thresholds: pd.DataFrame | None = None,
    ablated: pd.DataFrame | None = None,
    metric: str = "balanced_accuracy",
) -> dict[str, float]:
    """Share of periods beating buy-and-hold and in profit, the worst period and the spread
    of excess returns; per regime the strategy's Sharpe, excess return and signal IC; the
    best and worst Sharpe over the threshold grid; the return without costs and at the worst
    costs; the full model's ``metric`` and its loss without each feature group.

    Takes ``robustness.period_backtests``, per regime kind the table joining
    ``metrics_by_label`` (``strategy``/``benchmark`` columns) and ``signal_quality_by_label``
    (``signal``), and ``parameter_variation`` tables over thresholds and costs.
    """
    excess, strategy = periods["excess_return"], periods["strategy_total_return"]
    out: dict[str, float] = {
        "periods.n": len(periods),
        "periods.share_beating_benchmark": float((excess > 0).mean()),
        "periods.share_positive": float((strategy > 0).mean()),
        "periods.worst_return": float(strategy.min()),
        "periods.excess_return_std": float(excess.std(ddof=1)) if len(periods) > 1 else np.nan,
    }
    for kind, table in regimes.items():
        for label, row in table.iterrows():
            key = f"regime.{kind}.{str(label).replace(' ', '_')}"
            out[f"{key}.sharpe"] = row[("strategy", "sharpe")]
            out[f"{key}.excess_return"] = (
                row[("strategy", "total_return")] - row[("benchmark", "total_return")]
            )
            out[f"{key}.ic"] = row[("signal", "ic")]
    if thresholds is not None:
        out |= {
            "thresholds.n": len(thresholds),
            "thresholds.best_sharpe": float(thresholds["sharpe"].max()),
            "thresholds.worst_sharpe": float(thresholds["sharpe"].min()),
            "thresholds.share_positive_return": float((thresholds["total_return"] > 0).mean()),
        }
    free = costs[(costs["fee_bps"] == 0) & (costs["slippage_bps"] == 0)]["total_return"]
    if free.empty:
        raise BadInputError("the cost grid needs a row with fee_bps=0 and slippage_bps=0")
    out |= {
        "costs.zero_cost_return": float(free.iloc[0]),
        "costs.worst_return": float(costs["total_return"].min()),
    }
    if ablated is not None:
        out[f"ablation.all.{metric}"] = ablated.loc[ALL_FEATURES, metric]
        out |= {f"ablation.{name}.loss": v for name, v in ablation_loss(ablated, metric).items()}
    return out
