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
# # 04 · Backtesting
#
# The experiment's model traded as its config says (`backtest:` strategy, thresholds, costs)
# on the bars it predicted out of sample, and **buy-and-hold beside it on the same bars with the
# same costs**. A signal computed at a bar's close fills at the next bar's open (default), with
# fees and slippage; nothing reads a later bar.
#
# The predictions come from notebook 03 (`{output_dir}/03-model-prototyping/predictions.parquet`)
# when it ran with this config; otherwise the model is trained here first.

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

# %% [markdown]
# The setup: the experiment config (and any `plugins:` it lists), the parameters above on top,
# seeds, logging, and where the outputs go.

# %%
from IPython.display import Image, Markdown, display

import cryptoai as ca
from cryptoai.backtest.metrics import compute_metrics
from cryptoai.backtest.report import write_report
from cryptoai.research import eda, summaries
from cryptoai.research import robustness as rb
from cryptoai.research.notebook import notebook_setup

session = notebook_setup(
    "04-backtesting",
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
# ## Predictions to signal
#
# A direction classifier's signal is its probability of an up bar (`proba_1`); any other model
# trades its `score`. The histogram shows how often the signal crosses the config's thresholds.

# %%
predictions = rb.load_predictions(cfg, session.output_root / "03-model-prototyping")
from_notebook_03 = predictions is not None
if not from_notebook_03:
    print("no predictions from notebook 03 for this config: training the model here")
    predictions = ca.train(cfg, tracking=False, progress=True).predictions
ohlcv = eda.training_candles(cfg)
bars = rb.backtest_window(ohlcv, predictions)
signal = rb.prediction_signal(predictions)
spec = exp.backtest
print(
    f"{len(predictions):,} predictions ({'notebook 03' if from_notebook_03 else 'trained here'}),"
    f" backtest over {len(bars):,} bars {bars.index[0]} .. {bars.index[-1]}"
)
print(
    f"strategy {spec.strategy} {spec.params}; fees {spec.fee_bps} bps, "
    f"slippage {spec.slippage_bps} bps, fill at {spec.fill_at}"
)
thresholds = {k: v for k, v in spec.params.items() if k in ("long_above", "short_below")}
session.show(eda.plot_signal_histogram(signal, thresholds), "signal")

# %% [markdown]
# ## Strategy vs buy-and-hold
#
# `robustness.model_backtest` is the one place an experiment's `backtest:` section becomes
# trades (05 uses it too); it calls `ca.run_backtest`, which runs the strategy and
# buy-and-hold through the same engine with the same costs.

# %%
result, benchmark = rb.model_backtest(bars, signal, spec)
paths = write_report(
    result,
    benchmark,
    bars,
    out.dir,
    title=f"{exp.experiment_id} {exp.name}: {spec.strategy} vs buy-and-hold",
    period_label=(
        "the out-of-sample test folds of notebook 03: every bar traded was predicted by a"
        " model that never trained on it"
    ),
    note=rb.lookahead_note(rb.experiment_strategy(spec, signal)[0], bars),
)
strategy_metrics, benchmark_metrics = compute_metrics(result), compute_metrics(benchmark)
eda.comparison_table({spec.strategy: strategy_metrics, "buy and hold": benchmark_metrics}).T

# %% [markdown]
# ## The report's plots
#
# Equity and drawdown against buy-and-hold, monthly returns, trades on the price.

# %%
for key in ("equity_plot", "drawdown_plot", "monthly_plot", "trades_plot"):
    display(Image(filename=str(paths[key])))

# %% [markdown]
# ## Trades
#
# Round trips (net of fees); the full list is in `trades.csv`.

# %%
result.trades.head(10)

# %% [markdown]
# ## Results
#
# `write_report` wrote `metrics.json` (the strategy's metrics with buy-and-hold nested under
# `benchmark`), `trades.csv`, `equity.csv`, the plots and `backtest_report.md`;
# `summaries.backtest_summary` adds the comparisons with buy-and-hold.

# %%
out.metrics(
    summaries.backtest_summary(
        strategy_metrics,
        benchmark_metrics,
        n_predictions=len(predictions),
        predictions_from_03=from_notebook_03,
    )
)
session.close()
display(Markdown(paths["report"].read_text().split("## Plots")[0]))
