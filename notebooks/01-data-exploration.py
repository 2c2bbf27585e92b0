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
# # 01 · Data exploration
#
# What do the candles look like before any model sees them? This notebook loads the
# experiment's symbol and a few others for comparison from the raw store (synthetic candles
# are generated offline when missing) and checks, with `cryptoai` and `cryptoai.research.eda`:
#
# 1. **missing data, duplicates and timezones**: the OHLCV contract (UTC bar open times,
#    strictly increasing, unique) and the gaps an exchange leaves;
# 2. **time alignment** across symbols: which bars every series shares;
# 3. **price, volume, volatility and gaps** over time;
# 4. **returns**: fat tails and cross-asset correlation.
#
# Everything it writes stays under `output_dir`. With `write_docs = True` its notes and plots
# also replace the documented EDA in `docs/eda/` (tracked files, so never by default).

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
compare_symbols = ["ETH/USDT"]  # loaded beside the config's symbol
write_docs = False  # True: also rewrite docs/eda/ (the repository's documented EDA)

# %% [markdown]
# The setup: the experiment config (and any `plugins:` it lists), the parameters above on top,
# seeds, logging, and where the outputs go.

# %%
import pandas as pd

import cryptoai as ca
from cryptoai.data.frame import normalize
from cryptoai.data.preprocess import to_utc
from cryptoai.data.quality import anomalies
from cryptoai.data.timeframes import timeframe_to_timedelta
from cryptoai.research import eda, summaries
from cryptoai.research.notebook import notebook_setup

session = notebook_setup(
    "01-data-exploration",
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
# ## Load
#
# The same source, timeframe and period for every symbol.

# %%
tf = d.timeframe
ppy = pd.Timedelta(days=365) / timeframe_to_timedelta(tf)  # bars per year (crypto is 24/7)
tail = cfg.smoke_bars if smoke else None
frames = eda.load_symbols(cfg.data, [d.symbol, *compare_symbols], tail=tail)
for name, frame in frames.items():
    print(f"{name}: {len(frame):,} bars {frame.index[0]} .. {frame.index[-1]}")
frames[d.symbol].tail(3)

# %% [markdown]
# ## Missing data, duplicates and timezones
#
# One row per series: expected vs present bars, gaps (the longest in bars), duplicated or
# unsorted timestamps, candles with NaN or impossible OHLC, bars off the timeframe grid, and the
# index timezone. The store only holds contract-clean frames, so problems here come from the
# source itself (exchange outages show up as gaps).

# %%
quality = eda.data_quality_table(frames, tf)
quality

# %% [markdown]
# Timezones are the classic silent bug: a CSV exported without offsets reads as naive
# timestamps, and an export in local time shifts every bar. `ca.validate` names both, and
# `preprocess.to_utc` fixes them explicitly. Duplicated rows (overlapping downloads) are
# reported too; `frame.normalize` keeps the newest row per timestamp.

# %%
sample = frames[d.symbol].head(48)
naive = sample.tz_localize(None)  # what a CSV without offsets gives
local = sample.tz_convert("America/New_York")
duplicated = pd.concat([sample, sample.iloc[[5]]]).sort_index()
for label, frame in [("naive", naive), ("New York", local), ("duplicated", duplicated)]:
    print(f"{label:>10}: {ca.validate(frame, tf).problems()}")
assert to_utc(naive).index.equals(sample.index)  # naive read as UTC
assert to_utc(local).index.equals(sample.index)  # converted back
assert normalize(duplicated).index.equals(sample.index)  # one row per timestamp
print("to_utc and normalize restore the contract")

# %% [markdown]
# ## Gaps
#
# Each series' coverage in green, missing bars in red.

# %%
session.show(eda.plot_gaps(frames, tf), "gaps")
for name, frame in frames.items():
    table = eda.gap_table(frame, tf)
    print(f"{name}: {len(table)} gap(s)" + ("" if table.empty else f", longest:\n{table.head()}"))

# %% [markdown]
# ## Time alignment across symbols
#
# Cross-asset features and portfolio backtests need the same bars in every series. Bars missing
# from one series and present in another must be dropped or filled explicitly
# (`preprocess.fill_gaps`), never silently forward-filled by a join.

# %%
alignment = eda.alignment_table(frames)
alignment

# %% [markdown]
# ## Price, volume and volatility
#
# Prices relative to their first bar (log scale), traded value per day, and the rolling
# volatility over one week of bars (volatility clusters show as waves).

# %%
session.show(eda.plot_prices(frames), "prices")
session.show(eda.plot_volume(frames), "volume")
vol_window = max(2, int(pd.Timedelta(days=7) / timeframe_to_timedelta(tf)))
vol_window = min(vol_window, max(2, len(frames[d.symbol]) // 4))  # short samples: shorter
session.show(eda.plot_volatility(frames, vol_window, ppy), "volatility")

# %% [markdown]
# ## Returns: fat tails and correlation
#
# Bar log-returns: annualized drift and volatility, skew and excess kurtosis (0 for a normal
# distribution; crypto is strongly positive), and their correlation across symbols on the
# bars all series share.

# %%
stats = eda.return_stats(frames, ppy)
corr = eda.log_returns(frames).corr()
session.show(eda.plot_heatmap(corr, "Correlation of bar log-returns"), "return_correlation")
stats

# %% [markdown]
# ## Anomalies worth a look
#
# Extreme moves, zero-volume or flat candles, stale prices.

# %%
found = {name: anomalies(frame) for name, frame in frames.items()}
for name, items in found.items():
    print(f"{name}: " + ("none" if not items else "\n  - " + "\n  - ".join(items)))

# %% [markdown]
# ## Results
#
# `summaries.data_summary` turns the tables above into the numbers of `metrics.json` (logged
# to MLflow by the experiment runner); the tables go to `notes.md` beside the plots.

# %%
metrics = summaries.data_summary(quality, stats, alignment, corr, found)
out.metrics(metrics)
sections = {
    "Quality": eda.markdown_table(quality.drop(columns=["first", "last"])),
    "Alignment": eda.markdown_table(alignment),
    "Returns": eda.markdown_table(stats),
    "Anomalies": "\n".join(
        f"- {name}: " + ("; ".join(items) if items else "none") for name, items in found.items()
    ),
}
notes = "\n\n".join(
    [
        f"# Data exploration: {', '.join(frames)} {tf}",
        f"Source {d.source}, {d.start} to {d.end}{' (smoke run)' if smoke else ''}.",
        *(f"## {title}\n\n{body}" for title, body in sections.items()),
    ]
)
out.text(notes + "\n", "notes.md")
if write_docs:  # tracked files: only when asked (make run refreshes them via cryptoai validate)
    path = eda.write_eda_docs(notes, session.figures, d.symbol, tf)
    print(f"notes and plots written to {path.parent}")
session.close()
metrics
