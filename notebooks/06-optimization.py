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
# # 06 · Optimization
#
# Which EMA crossover spans trend-follow best on these candles, **and how much of that best is
# luck?** A grid sweep of `ema_cross` through `cryptoai.run_optimization` (the same code as
# `cryptoai optimize --config configs/optimize/ema_cross_grid.yaml`), then the numbers that
# discount the best for the number of things tried: the stable region around it, the
# deflated Sharpe ratio, the probability of backtest overfitting and the trial ledger. A
# short walk-forward asks whether the choice holds on bars it never saw, and the chosen
# parameters are traded against buy-and-hold with the same costs.
#
# Every trial runs through the one execution kernel with the optimize config's costs (fill
# at the next bar's open, fees and slippage on). See `docs/optimize.md` for how each
# statistic is computed.

# %% tags=["parameters"]
# Parameters (papermill replaces this cell's values; None = take it from the config).
# Relative paths are looked up from the working directory, then from the repository root.
config_path = "../configs/experiments/logreg_baseline.yaml"
symbol = None
timeframe = None
start = None
end = None
seed = 42
smoke = False  # True: the last 2400 bars, 3 points per grid dimension, 2 windows: seconds
output_dir = "experiments/scratch"  # results land in {output_dir}/{notebook}/
store_root = None  # raw candle store (None: the config's dataset.store_root)
grid_config = "../configs/optimize/ema_cross_grid.yaml"  # the sweep (its data is replaced)
walk_forward_config = "../configs/optimize/ema_cross_walk_forward.yaml"
min_trades = None  # None: the optimize config's (smoke: at most 2, the bars are few)
tracking = False  # True: an MLflow run per search, and this notebook's trials in the ledger

# %% [markdown]
# The setup: the experiment config gives the dataset (with the parameters above on top),
# seeds, logging and where the outputs go. The optimize configs give the strategy, the
# space, the constraints, the objective and the costs; their `data:` is replaced by the
# notebook's dataset so both searches run on the candles the other notebooks use. A smoke
# run keeps the last 2400 bars, where slow crossovers trade a handful of times: it lowers
# `min_trades` so that some trials rank.

# %%
import pandas as pd
from IPython.display import Image, Markdown, display

import cryptoai as ca
from cryptoai.backtest.metrics import compute_metrics, periods_per_year
from cryptoai.optimize import load_optimize_config
from cryptoai.optimize.results import top_trials
from cryptoai.optimize.runner import load_data
from cryptoai.optimize.significance import sweep_statistics
from cryptoai.research import eda
from cryptoai.research.notebook import notebook_setup

session = notebook_setup(
    "06-optimization",
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
out = session.out


def fmt(value) -> str:
    """A statistic for printing: three decimals, or n/a when it is undefined."""
    return "n/a" if value is None else f"{value:.3f}"


def on_notebook_data(path):
    """The optimize config at ``path`` as a dict, its data replaced by the notebook's."""
    cfg = load_optimize_config(eda.resolve_path(path)).model_dump(mode="json")
    least = min_trades if min_trades is not None else cfg["min_trades"]
    if smoke and min_trades is None:
        least = min(least, 2)
    data = session.data.model_dump(mode="json")
    return cfg | {"data": data, "seed": session.exp.seed, "min_trades": least}


grid_cfg = on_notebook_data(grid_config)
print(f"strategy {grid_cfg['strategy']}, space {grid_cfg['space']}")
print(f"constraints {grid_cfg['constraints']}, objective {grid_cfg['objective']}")
print(f"costs {grid_cfg['backtest']}, min_trades {grid_cfg['min_trades']}")

# %% [markdown]
# ## The grid sweep
#
# Every point of the grid that satisfies the constraints is one trial: the strategy with
# those parameters, backtested on the whole dataset. A trial with fewer than `min_trades`
# trades is *failed*: counted (it was tried), never ranked. The report folder (results.json,
# trials.csv, plots, report.md) goes under this notebook's outputs.

# %%
grid = ca.run_optimization(grid_cfg, out=out.dir / "grid", smoke=smoke, tracking=tracking)
metric = grid.config.objective.metric
trials = grid.trials_frame()
s = grid.statistics
print(
    f"{s['n_trials']} trials ({s['n_complete']} complete, {s['n_failed']} failed),"
    f" {s['n_skipped']} combinations skipped by the constraints, on {s['n_obs']:,} bars"
)
names = list(grid.config.space)
top = top_trials(grid, n=10)
trials.set_index("number").loc[[t.number for t in top], [*names, "state", "value", "n_trades"]]

# %% [markdown]
# ## The objective over the grid
#
# The median objective over every pair of parameters. A good region is a plateau, not a
# single bright cell: a lone peak among poor neighbours is what fitting noise looks like.

# %%
display(Image(filename=str(grid.files["heatmap"])))

# %% [markdown]
# ## The best trial vs the stable region
#
# The *stable* trial is the one whose neighbourhood (itself and every grid point one step
# away in every dimension) has the best median objective. The fall-off is how much worse
# the objective is, in the median, one step away from the single best: large means the
# best is a spike.

# %%
best, stable = grid.best, grid.stable
rows = {"best": best["metrics"], "stable": stable["metrics"]}
table = eda.comparison_table(rows, [metric, "total_return", "max_drawdown", "n_trades"])
table.insert(0, "params", [str(best["params"]), str(stable["params"])])
print(
    f"one step from the best, the median {metric} is {fmt(stable['best_neighbourhood_median'])}:"
    f" it falls off by {fmt(stable['best_falloff'])} from {fmt(best['metrics'][metric])}"
)
table

# %% [markdown]
# ## How much of the best is luck
#
# - The **deflated Sharpe ratio** is the probability that the best trial's true Sharpe ratio
#   is above zero once the number of trials, the spread of their Sharpe ratios, the sample
#   length and fat tails are accounted for: above 0.95 the best is unlikely to be luck
#   alone, around 0.5 it is a coin toss.
# - The **probability of backtest overfitting** (PBO) cuts the bars into blocks and, for
#   every half/half split, asks where the in-sample winner ranks out of sample: near 0 the
#   selection picks a good trial, 0.5 is no better than picking at random, above 0.5 the
#   winner tends to be a loser elsewhere.
# - The **expected maximum Sharpe ratio of noise** is the best Sharpe ratio as many trials
#   with no edge at all would show, given this sweep's spread.

# %%
luck = {
    "best Sharpe (annualized)": s["best_sharpe_annualized"],
    "expected max Sharpe of noise (annualized)": s["expected_max_sharpe_annualized"],
    "deflated Sharpe ratio": s["deflated_sharpe"],
    "probability of backtest overfitting": s["pbo"],
}
for label, value in luck.items():
    print(f"{label:>42}: {fmt(value)}")
dsr, pbo = s["deflated_sharpe"], s["pbo"]
if dsr is not None:
    verdict = "is unlikely to be luck alone" if dsr > 0.95 else "may well be luck"
    print(f"\nThe best of {s['n_trials']} trials {verdict} (deflated Sharpe {dsr:.2f}).")
if pbo is not None:
    reading = "worse than picking at random" if pbo > 0.5 else "better than picking at random"
    print(f"Choosing the in-sample best is {reading} out of sample (PBO {pbo:.2f}).")

# %% [markdown]
# ## Walk-forward: does the choice hold on unseen bars?
#
# The last windows of the data are test windows. For each, the grid is searched on the
# bars before it only, and the winner trades the window (starting flat, same costs). The
# walk-forward efficiency is the mean out-of-sample objective over the mean in-sample
# best: near 1 the edge carried over, near 0 or negative it did not. The smoke run keeps
# the config's 30-day windows (a shorter one has no annualized Sharpe ratio) but only two
# of them, on the smoke grid.

# %%
wf_cfg = on_notebook_data(walk_forward_config)
if smoke:  # the smoke grid, two windows of the config's length (Sharpe needs 30 days)
    wf_cfg["space"] = dict(grid.config.space)
    wf_cfg["walk_forward"]["n_splits"] = 2
wf = ca.run_optimization(wf_cfg, out=out.dir / "walk_forward", tracking=tracking)
wf_stats = wf.statistics
print(
    f"{wf_stats['n_windows']} windows, {wf_stats['n_trials']} in-sample trials;"
    f" walk-forward efficiency {fmt(wf_stats['walk_forward_efficiency'])},"
    f" P(out-of-sample Sharpe > 0) {fmt(wf_stats['oos_probabilistic_sharpe'])}"
)
display(Image(filename=str(wf.files["equity"])))
windows = pd.DataFrame(wf.walk_forward["windows"])
windows[["window", "test_start", "test_end", "params", "in_sample", "out_of_sample"]]

# %% [markdown]
# ## The trial ledger
#
# The deflated Sharpe ratio above corrects for the grid's own trials, but every search run
# on the same candles tried something too. With `tracking=True` each search is recorded in
# the trial ledger (the MLflow experiment `cryptoai-trial-ledger`, keyed by the candles'
# fingerprint) and the total is read back from it; without tracking (the default here)
# nothing is recorded and the count is what this notebook ran: the grid and the
# walk-forward. The grid's best is then deflated by that count.

# %%
if wf.ledger is not None:
    ledger_total = wf.ledger["n_trials_total"]
    source = f"the ledger, over {wf.ledger['n_sweeps_total']} sweeps of these candles"
else:
    ledger_total = s["n_trials"] + wf_stats["n_trials"]
    source = "this notebook's grid and walk-forward (not tracked: nothing recorded)"
ppy = periods_per_year(load_data(grid.config).index)
best_trial = next(t for t in grid.trials if t.number == best["number"])
by_all = sweep_statistics(grid.trials, best_trial, ppy, n_trials_total=ledger_total)
ledger_dsr = by_all.get("ledger_deflated_sharpe")
print(f"{ledger_total} trials counted, from {source}")
print(f"deflated Sharpe of the grid's best: {fmt(s['deflated_sharpe'])} by its own trials,")
print(f"{fmt(ledger_dsr)} by all {ledger_total}")

# %% [markdown]
# ## The chosen parameters vs buy-and-hold
#
# The grid's best parameters traded on the whole dataset, and buy-and-hold beside them on
# the same bars with the same costs (an in-sample view: the walk-forward above is the
# honest out-of-sample one).

# %%
bars = load_data(grid.config)
chosen, benchmark = ca.run_backtest(
    bars, grid.config.strategy, {**grid.config.params, **best["params"]}, grid.config.settings()
)
chosen_metrics, benchmark_metrics = compute_metrics(chosen), compute_metrics(benchmark)
display(Image(filename=str(grid.files["equity"])))
eda.comparison_table(
    {f"ema_cross {best['params']}": chosen_metrics, "buy and hold": benchmark_metrics}
)

# %% [markdown]
# ## Results
#
# `metrics.json` (prefixed `optimize.`): the best and stable objective, the luck statistics,
# the trial counts and the walk-forward efficiency. The two report folders are beside it.

# %%
values = {
    "best_sharpe": best["metrics"]["sharpe"],
    "best_objective": best["metrics"][metric],
    "stable_objective": stable["metrics"][metric],
    "best_falloff": stable["best_falloff"],
    "deflated_sharpe": s["deflated_sharpe"],
    "pbo": s["pbo"],
    "expected_max_sharpe": s["expected_max_sharpe_annualized"],
    "n_trials": s["n_trials"],
    "ledger_n_trials": ledger_total,
    "ledger_deflated_sharpe": ledger_dsr,
    "walk_forward_efficiency": wf_stats["walk_forward_efficiency"],
    "oos_sharpe": wf_stats["best_sharpe_annualized"],
    "excess_return": chosen_metrics["total_return"] - benchmark_metrics["total_return"],
}
out.metrics({k: float("nan") if v is None else v for k, v in values.items()}, prefix="optimize.")
session.close()
display(Markdown((grid.out_dir / "report.md").read_text().split("## Top trials")[0]))
