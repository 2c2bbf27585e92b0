# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Robustness
#
# Does the result survive changes it should survive? The same model and backtest
# (`cryptoai.research.robustness`) under:
#
# 1. **several periods**: the backtest re-run from flat on consecutive blocks, each against
#    buy-and-hold;
# 2. **regimes**: calm vs volatile and rising vs falling markets (labels from trailing
#    volatility and trend; the cut points use the whole sample, so they describe it after the
#    fact and are never traded on);
# 3. **parameter variation**: entry thresholds and costs around the config's values;
# 4. **feature ablation**: the model retrained without each feature group;
# 5. **stress scenarios** (`cryptoai.research.risk`): a -30% crash bar, a 3-day gap, three
#    times the volatility, fees x3 and slippage x5, each with the same strategy and parameters;
# 6. **margin stress**: leverage 1 to 10 with the maintenance margin: where it is liquidated;
# 7. **bootstrap intervals**: block-bootstrap confidence intervals of Sharpe and drawdown.
#
# A robust edge shows up in most periods and regimes, survives realistic costs and does not
# hinge on one threshold or one feature family.

# %% tags=["parameters"]
# Parameters (papermill replaces this cell's values; None = take it from the config).
# Relative paths are looked up from the working directory, then from the repository root.
config_path = "../configs/experiments/logreg_baseline.yaml"
symbol = None
timeframe = None
start = None
end = None
seed = 42
smoke = False  # True: a few hundred bars, tiny models, seconds per notebook
output_dir = "experiments/scratch"  # results land in {output_dir}/{notebook}/
store_root = None  # raw candle store (None: the config's dataset.store_root)
n_periods = 4  # consecutive blocks of the backtest
ablation = True  # retrain without each feature group (slow for sequence models)
n_boot = 1000  # bootstrap resamples (smoke: 200)
max_leverage = 10  # margin stress: leverage 1..max_leverage

# %% [markdown]
# The setup: the experiment config (and any `plugins:` it lists), the parameters above on top,
# seeds, logging, and where the outputs go.

# %%
import pandas as pd
from IPython.display import Markdown, display

import cryptoai as ca
from cryptoai.backtest.metrics import periods_per_year
from cryptoai.data.timeframes import timeframe_to_timedelta
from cryptoai.features.spec import load_feature_spec
from cryptoai.modeling.training import build_dataset
from cryptoai.optimize.trials import bar_returns
from cryptoai.research import eda, risk, summaries
from cryptoai.research import robustness as rb
from cryptoai.research.notebook import notebook_setup
from cryptoai.tracking.plots import plot_feature_importance

session = notebook_setup(
    "05-robustness",
    config_path,
    symbol=symbol,
    timeframe=timeframe,
    start=start,
    end=end,
    seed=seed,
    smoke=smoke,
    output_dir=output_dir,
    store_root=store_root,
)
exp, cfg, out, d = session.exp, session.cfg, session.out, session.data

# %% [markdown]
# ## The backtest under test
#
# Notebook 03's predictions for this config (or the model trained here), traded exactly as
# notebook 04 trades them.

# %%
predictions = rb.load_predictions(cfg, session.output_root / "03-model-prototyping")
if predictions is None:
    print("no predictions from notebook 03 for this config: training the model here")
    predictions = ca.train(cfg, tracking=False, progress=True).predictions
ohlcv = eda.training_candles(cfg)
bars = rb.backtest_window(ohlcv, predictions)
signal = rb.prediction_signal(predictions)
spec = exp.backtest
ppy = periods_per_year(bars.index)
result, benchmark = rb.model_backtest(bars, signal, spec)
print(
    f"{len(bars):,} bars; final equity {result.final_equity:,.2f} "
    f"vs buy-and-hold {benchmark.final_equity:,.2f}"
)

# %% [markdown]
# ## 1. Periods

# %%
periods = rb.period_backtests(bars, signal, spec, n_periods)
by_period = periods.set_axis([f"{s:%Y-%m-%d}" for s in periods["start"]])
fig = eda.plot_grouped_bars(
    by_period, ["strategy_total_return", "benchmark_total_return"], "Return per period"
)
session.show(fig, "periods")
periods

# %% [markdown]
# ## 2. Regimes
#
# Per regime: the strategy's and buy-and-hold's return, Sharpe, drawdown and trades on the bars
# of that regime, and the signal's IC and hit rate there.

# %%
window = max(2, int(pd.Timedelta(days=7) / timeframe_to_timedelta(d.timeframe)))
window = min(window, max(2, len(ohlcv) // 4))
regimes = {
    "volatility": rb.volatility_regimes(ohlcv["close"], window),
    "trend": rb.trend_regimes(ohlcv["close"], window),
}
by_regime = {}
for kind, labels in regimes.items():
    table = pd.concat(
        {
            "strategy": rb.metrics_by_label(result.equity, result.initial_cash, labels, ppy),
            "benchmark": rb.metrics_by_label(benchmark.equity, benchmark.initial_cash, labels, ppy),
        },
        axis=1,
    )
    quality = rb.signal_quality_by_label(predictions, labels)
    by_regime[kind] = table.join(pd.concat({"signal": quality}, axis=1))
    display(Markdown(f"**{kind}** ({window}-bar window)"))
    display(by_regime[kind])
returns = pd.concat(
    {
        k: t[[("strategy", "total_return"), ("benchmark", "total_return")]]
        for k, t in by_regime.items()
    }
)
returns.columns = ["strategy_total_return", "benchmark_total_return"]
returns.index = [f"{k}: {label}" for k, label in returns.index]
session.show(eda.plot_grouped_bars(returns, list(returns.columns), "Return by regime"), "regimes")

# %% [markdown]
# ## 3. Parameter variation
#
# Entry thresholds on a grid of the signal's own quantiles plus the config's values, at the
# config's costs; then fees and slippage from zero to punitive at the config's thresholds.
# Both grids hold the config's own point, whose row is the backtest of notebook 04. The grids
# are saved (`thresholds.csv`, `costs.csv`) beside the metrics.

# %%
thresholds = None
if spec.strategy == "model_signal":
    grid = {
        "long_above": eda.quantile_levels(
            signal, [0.5, 0.6, 0.7, 0.8, 0.9], spec.params.get("long_above", 0.55)
        ),
        "short_below": eda.quantile_levels(
            signal, [0.1, 0.2, 0.3, 0.4, 0.5], spec.params.get("short_below")
        ),
    }
    thresholds = rb.parameter_variation(bars, signal, spec, grid)
    out.text(thresholds.to_csv(index=False), "thresholds.csv")
    sharpe = thresholds.pivot(index="short_below", columns="long_above", values="sharpe")
    fig = eda.plot_heatmap(
        sharpe,
        "Sharpe by entry thresholds (costs on)",
        vmin=None,
        vmax=None,
        cmap="RdYlGn",
        fmt="{:.1f}",
    )
    session.show(fig, "thresholds")
cost_grid = {"fee_bps": [0.0, 2.0, 5.0, 10.0, 20.0, 40.0], "slippage_bps": [0.0, 2.0, 10.0]}
costs = rb.parameter_variation(bars, signal, spec, cost_grid)
out.text(costs.to_csv(index=False), "costs.csv")
fees = costs.pivot(index="fee_bps", columns="slippage_bps", values="total_return")
fig = eda.plot_heatmap(
    fees,
    "Total return by fees and slippage (bps)",
    vmin=None,
    vmax=None,
    cmap="RdYlGn",
    fmt="{:.1%}",
)
session.show(fig, "costs")
fees

# %% [markdown]
# ## 4. Feature ablation
#
# The experiment's model on the same folds without each feature group. A group whose removal
# hurts the most carries the signal; one whose removal helps is noise the model overfits.

# %%
primary = "balanced_accuracy" if cfg.task == "classification" else "ic"
ablated = None
if ablation:
    X, y, fwd = build_dataset(ohlcv, cfg)
    groups = rb.feature_groups(load_feature_spec(cfg.features))
    ablated = rb.feature_ablation(cfg, X, y, fwd, groups, progress=True)
    loss = summaries.ablation_loss(ablated, primary)
    fig = plot_feature_importance(
        loss.index,
        loss.to_numpy(),
        top=len(loss),
        xlabel=f"loss of {primary} without the group",
        title=f"Loss of {primary} without each feature group",
    )
    session.show(fig, "ablation")
    display(ablated)

# %% [markdown]
# ## 5. Stress scenarios
#
# The same strategy and parameters on stressed copies of the bars: a bar that falls 30% from
# its open (placed at the first bar of the second half where the backtest holds a position,
# so it hurts), three days of bars removed there, the swings around the trend scaled x3,
# and the same bars with fees x3 and slippage x5. The predictions stay those of the model
# (aligned by time): the stress tests the trading, not a retrained model.

# %%
strategy, settings = rb.experiment_strategy(spec, signal)
held = result.position.iloc[len(result.position) // 2 :]
crash_at = held.index[held.to_numpy() != 0][0] if (held != 0).any() else held.index[0]
stress = risk.stress_scenarios(bars, strategy, None, settings, crash_at=crash_at, gap_at=crash_at)
out.text(stress.to_csv(), "stress.csv")
fig = eda.plot_grouped_bars(stress, ["total_return", "max_drawdown"], "Stress scenarios")
session.show(fig, "stress")
stress

# %% [markdown]
# ## 6. Margin stress
#
# The backtest at leverage 1 to `max_leverage` with the settings' maintenance margin: a bar
# whose adverse move exceeds the margin liquidates the position at its liquidation price.
# `worst_equity` is the lowest bar-close equity of each run.

# %%
margin = risk.margin_stress(
    bars, strategy, None, settings, leverages=list(range(1, int(max_leverage) + 1))
)
out.text(margin.to_csv(), "margin.csv")
print(f"liquidated from leverage {risk.liquidation_leverage(margin)} (None: never)")
margin

# %% [markdown]
# ## 7. Bootstrap confidence intervals
#
# Sharpe ratio and maximum drawdown of the strategy's bar returns resampled by the
# stationary block bootstrap (mean block n^(1/3) bars, seeded): a 95% interval that spans
# zero says the Sharpe ratio is not distinguishable from no edge on this sample.

# %%
boot = risk.bootstrap_metrics(
    bar_returns(result),
    periods_per_year=ppy,
    n_boot=200 if smoke else int(n_boot),
    seed=int(seed or 0),
)
pd.Series(boot, name="bootstrap").to_frame()

# %% [markdown]
# ## Results
#
# `summaries.robustness_summary` gives the numbers of `metrics.json`: how often the strategy
# beats buy-and-hold across periods, its Sharpe per regime, the best and worst threshold, the
# return without costs and at the worst costs, and what each feature group is worth.

# %%
metrics = summaries.robustness_summary(
    periods, by_regime, costs, thresholds=thresholds, ablated=ablated, metric=primary
)
metrics |= risk.risk_summary(stress, margin, boot)
out.metrics(metrics)
session.close()
{k: v for k, v in metrics.items() if k.startswith("periods.")}
