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
# # 02 · Feature engineering
#
# The experiment's feature spec turned into columns (`ca.build_features`), exactly as training
# builds them: every value at bar *t* uses bars up to *t* only. We look at their warm-up,
# distributions and correlations, at how much each one alone says about the next return, and
# then select features two ways: **correlation pruning** (drop near-duplicates) and
# **importance pruning** (keep the most useful), both fitted on the first walk-forward training
# window only, so the choice never sees a test bar. The selection is saved for notebook 03
# (`selected_features.json`), which compares the model on it with the model on the full spec.

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
correlation_threshold = 0.9  # |corr| above this: a near-duplicate
keep_share = 0.5  # share of the pruned features importance pruning keeps

# %% [markdown]
# The setup: the experiment config (and any `plugins:` it lists), the parameters above on top,
# seeds, logging, and where the outputs go.

# %%
import numpy as np
import pandas as pd

import cryptoai as ca
from cryptoai.features.selection import correlation_prune, importance_prune
from cryptoai.features.spec import load_feature_spec
from cryptoai.modeling.training import build_dataset, plan_splits
from cryptoai.research import eda, summaries
from cryptoai.research.notebook import notebook_setup, save_selected_features
from cryptoai.research.robustness import feature_groups
from cryptoai.tracking.plots import plot_feature_importance

session = notebook_setup(
    "02-feature-engineering",
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
# ## The spec and the columns it makes
#
# `raw` holds every bar (warm-up included); `X`, `y` and `fwd` are what the model trains on:
# the warm-up and the unlabelled tail cut, exactly as `ca.train` cuts them.

# %%
ohlcv = eda.training_candles(cfg)
spec = load_feature_spec(cfg.features)
raw = ca.build_features(ohlcv, spec)
X, y, fwd = build_dataset(ohlcv, cfg)
groups = feature_groups(spec)
print(
    f"{cfg.features}: {len(spec.features)} entries -> {raw.shape[1]} columns on "
    f"{len(ohlcv):,} bars; {len(X):,} usable rows after warm-up"
)
pd.Series({name: ", ".join(cols) for name, cols in groups.items()}, name="columns").to_frame()

# %% [markdown]
# ## Warm-up and distributions
#
# `warmup` is the number of leading bars without a value (the longest window decides where
# training can start). Heavy tails (large excess kurtosis) suggest a transform or robust model.

# %%
summary = eda.describe_features(raw)
out.text(summary.to_csv(), "feature_summary.csv")
session.show(eda.plot_feature_distributions(X), "distributions")
summary

# %% [markdown]
# ## Correlation matrix
#
# Blocks of red are families of features that say the same thing.

# %%
corr = X.corr()
session.show(eda.plot_heatmap(corr, "Feature correlation (Pearson)"), "correlation")
upper = corr.where(np.triu(np.ones(corr.shape, dtype=bool), k=1)).stack()
print("most correlated pairs:")
print(upper.abs().sort_values(ascending=False).head(8).round(3).to_string())

# %% [markdown]
# ## The target and each feature's information coefficient
#
# The target's class balance (a classifier must beat the majority class), then the Spearman
# correlation of each feature with the realised forward return over all usable bars: a
# model-free hint, not a selection criterion (it looks at every bar, test bars included).

# %%
if cfg.task == "classification":
    print("class balance:", y.value_counts(normalize=True).sort_index().round(4).to_dict())
else:
    print("target:", y.describe().round(6).to_dict())
ic = eda.feature_target_ic(X, fwd)
fig = plot_feature_importance(
    ic.index,
    ic.to_numpy(),
    top=len(ic),
    xlabel="information coefficient (rank correlation with the forward return)",
    title="Information coefficient with the forward return",
)
session.show(fig, "feature_ic")

# %% [markdown]
# ## Feature selection (first training window only)
#
# 1. correlation pruning keeps the earlier column (spec order) of every pair with
#    |corr| > `correlation_threshold`;
# 2. importance pruning ranks the rest by a seeded random forest and keeps `keep_share`.
#
# The selection goes to `selected_features.json`, with the key of this config, for notebook 03.

# %%
train_rows = plan_splits(cfg, len(X))[0][0]
X_train, y_train = X.iloc[train_rows], y.iloc[train_rows]
kept = correlation_prune(X_train, threshold=correlation_threshold)
ranked = importance_prune(X_train[kept], y_train, keep=len(kept), seed=exp.seed)
selected = ranked[: max(1, int(np.ceil(keep_share * len(kept))))]
save_selected_features(
    out,
    selected,
    cfg,
    correlation_threshold=correlation_threshold,
    keep_share=keep_share,
    fitted_on_rows=len(train_rows),
    fitted_until=str(X_train.index[-1]),
)
selection = pd.DataFrame(
    {
        "kept_by_correlation": [c in kept for c in X.columns],
        "importance_rank": [ranked.index(c) + 1 if c in ranked else np.nan for c in X.columns],
        "selected": [c in selected for c in X.columns],
    },
    index=X.columns,
).rename_axis("feature")
print(
    f"{X.shape[1]} features -> {len(kept)} after correlation pruning -> {len(selected)} "
    f"selected (fitted on {len(train_rows):,} training rows)"
)
selection.sort_values("importance_rank")

# %% [markdown]
# ## Results
#
# `summaries.feature_summary` gives the numbers of `metrics.json`: the size of the feature set,
# its warm-up and redundancy, the ICs, what each selection step kept and the majority share.

# %%
metrics = summaries.feature_summary(raw, X, y, ic, kept=kept, selected=selected, task=cfg.task)
out.metrics(metrics)
session.close()
metrics
