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
# # 03 · Model prototyping
#
# Baselines from simple to deep, each under the experiment's **purged walk-forward
# validation** (same folds, same features, same target, same seed), in one table with the
# naive baseline (majority class, or a zero-return forecast). A model that does not beat the
# naive baseline out of sample has learned nothing tradable.
#
# The experiment's own model comes first; its out-of-sample predictions are saved to
# `predictions.parquet` for the backtest (04) and robustness (05) notebooks. It is then
# trained once more on the features notebook 02 selected, to see what the selection is worth.
# In smoke mode every model is tiny (one epoch for the networks) and only two folds run.

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
candidates = None  # models compared with the config's (None: all six; smoke: four)

# %% [markdown]
# The setup: the experiment config (and any `plugins:` it lists), the parameters above on top,
# seeds, logging, and where the outputs go.

# %%
import time

from IPython.display import display
from tqdm import tqdm

import cryptoai as ca
from cryptoai.modeling.training import HEADLINE, build_dataset
from cryptoai.research import eda, summaries
from cryptoai.research import robustness as rb
from cryptoai.research.notebook import load_selected_features, notebook_setup
from cryptoai.tracking.plots import plot_calibration, plot_confusion_matrix

session = notebook_setup(
    "03-model-prototyping",
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
# ## Train every candidate
#
# Parameters come from `configs/models/NAME.yaml` (their `smoke_params` in smoke mode); the
# experiment's model keeps the experiment's parameters. Models that cannot do the task are
# left out (e.g. logistic regression on a return target). A smoke run compares the tabular
# models and one recurrent network unless `candidates` says otherwise. The bar shows the
# models done; each model's folds are logged as they finish.

# %%
ALL_MODELS = ["logreg", "random_forest", "xgboost", "lstm", "gru", "tft"]
SMOKE_MODELS = ["logreg", "random_forest", "xgboost", "gru"]  # one recurrent net is enough
names = candidates if candidates is not None else (SMOKE_MODELS if smoke else ALL_MODELS)
configs = eda.model_candidates(exp, names, smoke=smoke, work_dir=session.work_dir)
results, seconds = {}, {}
for name, model_cfg in tqdm(configs.items(), desc="models", unit="model"):
    t0 = time.perf_counter()
    results[name] = ca.train(model_cfg, tracking=False, progress=True)
    seconds[name] = time.perf_counter() - t0
    print(f"{name:>14}: {seconds[name]:6.1f} s  {model_cfg.model.params}")
main = results[exp.model.name]
main.folds

# %% [markdown]
# ## One table
#
# Out-of-sample metrics as means over the test folds (`ic` and `hit_rate` against the realised
# forward return; pooled figures are named `*_pooled`), the fold-to-fold spread of the IC, and
# training time. The last row is the naive baseline, scored fold by fold the same way.

# %%
headline = HEADLINE[cfg.task]
primary = "balanced_accuracy" if cfg.task == "classification" else "ic"
rows = {name: {**r.aggregate, "seconds": seconds[name]} for name, r in results.items()}
rows["naive baseline"] = main.baseline_aggregate
table = eda.comparison_table(rows, [*headline, "ic_std", "seconds"])
out.text(table.to_csv(), "comparison.csv")
session.show(eda.plot_metric_comparison(table, primary, reference="naive baseline"), "comparison")
table

# %% [markdown]
# ## The experiment's model, fold by fold
#
# Per-fold metrics, their mean, all test bars pooled and the baseline: a model that wins on
# average but loses in most folds is not robust.

# %%
if cfg.task == "classification":
    p = main.predictions.dropna(subset=["pred", "y_true"])
    session.show(plot_confusion_matrix(p["y_true"], p["pred"]), "confusion_matrix")
    if sorted(c for c in p.columns if c.startswith("proba_")) == ["proba_0", "proba_1"]:
        session.show(plot_calibration(p["y_true"], p["proba_1"]), "calibration")
main.summary()

# %% [markdown]
# ## The features notebook 02 selected
#
# Notebook 02 fitted its selection on the first training window and saved it for this very
# config (`selected_features.json`). Here the experiment's model runs again on those columns
# only, on the same rows and folds as above, so the two rows differ by the features alone.
# Without a selection for this config (02 not run, or run with other data), the full spec is
# all there is and this step says so.
#
# The predictions saved for 04 and 05 stay those of the **full spec**, on purpose: the
# experiment config is the one record of what was trained (the runner logs it, and 04, 05 and
# `cryptoai train` rebuild the model from it), and a narrower spec would change the warm-up and
# with it the folds, which could put bars the selection was fitted on into a test block. To
# adopt a selection, list its columns in a feature spec (`columns:` per entry) and point the
# config's `features:` at it.

# %%
selected = load_selected_features(cfg, session.output_root / "02-feature-engineering")
selection_metrics = {}
if selected is None:
    print("no feature selection from notebook 02 for this config: the full spec only")
else:
    X, y, fwd = build_dataset(eda.training_candles(cfg), cfg)
    unselected = {"unselected": [c for c in X.columns if c not in selected]}
    compared = rb.feature_ablation(cfg, X, y, fwd, unselected, progress=True)
    compared = compared.rename(
        index={"all features": "full spec", "without unselected": "02 selection"}
    )
    row = compared.loc["02 selection"]
    selection_metrics = {f"selection.{m}": row[m] for m in ["n_features", *headline] if m in row}
    display(compared[[c for c in ["n_features", *headline] if c in compared.columns]])

# %% [markdown]
# ## Save the out-of-sample predictions
#
# One row per test bar (index `timestamp`): `y_true`, `pred`, `score` (the trading signal),
# class probabilities, `fold` and the realised `forward_return`. No training bar is in it.
# `summaries.model_summary` gives the numbers of `metrics.json`.

# %%
path = rb.save_predictions(main.predictions, cfg, out.dir)
print(f"{len(main.predictions):,} out-of-sample predictions of {exp.model.name} -> {path}")
metrics = summaries.model_summary(main, results, seconds, headline) | selection_metrics
out.metrics(metrics)
session.close()
{k: metrics[k] for k in [*headline, *selection_metrics] if k in metrics}
