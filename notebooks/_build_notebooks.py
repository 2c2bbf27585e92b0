"""Write the numbered research notebooks from the cell sources below.

The notebooks are generated so they stay reproducible and reviewable: edit a cell here, run
``python notebooks/_build_notebooks.py``, and commit the regenerated ``.ipynb`` files (stored
without outputs or execution counts). ``--check`` exits non-zero when a committed notebook
differs from what this script builds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

PARAMETERS = """\
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
store_root = None  # raw candle store (None: the config's dataset.store_root)"""


def setup(notebook: str, *imports: str) -> str:
    """The setup cell every notebook shares: config, seeds and where outputs go."""
    lines = [
        "%matplotlib inline",
        "import logging",
        "import tempfile",
        "import warnings",
        "",
        'warnings.filterwarnings("ignore", message="IProgress not found")  # no widgets: text bars',
        "",
        "import pandas as pd",
        "from IPython.display import Image, Markdown, display",
        "",
        "from cryptoai.research import eda",
        "from cryptoai.research.notebook import NotebookOutputs",
        "from cryptoai.seeds import seed_everything",
        *imports,
        "",
        'logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")',
        'pd.set_option("display.width", 140)',
        'pd.set_option("display.max_columns", 30)',
        'pd.set_option("display.precision", 4)',
        "",
        "exp = eda.notebook_experiment(",
        "    config_path, symbol=symbol, timeframe=timeframe, start=start, end=end,",
        "    seed=seed, store_root=store_root,",
        ")",
        "seed_everything(exp.seed)",
        "scratch = tempfile.TemporaryDirectory(prefix='cryptoai-')  # model checkpoints, if any",
        "cfg = eda.notebook_train_config(exp, smoke=smoke, work_dir=scratch.name)",
        "output_root = eda.resolve_path(output_dir)",
        f'out = NotebookOutputs(output_root, "{notebook}")',
        "figures = {}",
        "d = exp.dataset",
        "display(Markdown(",
        '    f"**{exp.experiment_id} {exp.name}**: {exp.objective}\\n\\n"',
        '    f"Data: {d.file or d.source} {d.symbol} {d.timeframe}, {d.start} to {d.end}"',
        "    f\"{' (smoke: last ' + str(cfg.smoke_bars) + ' bars)' if smoke else ''}. \"",
        '    f"Outputs: `{out.dir}`"',
        "))",
    ]
    return "\n".join(lines)


def show(name: str, fig: str = "fig") -> str:
    """Save a figure with the notebook's outputs, keep it in ``figures`` and display it."""
    return f'figures["{name}"] = {fig}\ndisplay(Image(filename=out.figure({fig}, "{name}")))'


# --------------------------------------------------------------------------- 01
NB01 = [
    (
        "md",
        """\
# 01 · Data exploration

What do the candles look like before any model sees them? This notebook loads the
experiment's symbol and a few others for comparison from the raw store (synthetic candles
are generated offline when missing) and checks, with `cryptoai.data` and `cryptoai.research.eda`:

1. **missing data, duplicates and timezones**: the OHLCV contract (UTC bar open times,
   strictly increasing, unique) and the gaps an exchange leaves;
2. **time alignment** across symbols: which bars every series shares;
3. **price, volume, volatility and gaps** over time;
4. **returns**: fat tails and cross-asset correlation.

Run in full (`smoke=False`), its notes and plots are also written to `docs/eda/`; in smoke
mode everything stays under `output_dir`.""",
    ),
    (
        "params",
        PARAMETERS + '\ncompare_symbols = ["ETH/USDT"]  # loaded beside the config\'s symbol',
    ),
    (
        "code",
        setup(
            "01-data-exploration",
            "from cryptoai.data.frame import normalize",
            "from cryptoai.data.preprocess import to_utc",
            "from cryptoai.data.quality import anomalies",
            "from cryptoai.data.symbols import path_safe",
            "from cryptoai.data.timeframes import timeframe_to_timedelta",
            "from cryptoai.data.validate import validate_ohlcv",
        ),
    ),
    ("md", "## Load\n\nThe same source, timeframe and period for every symbol."),
    (
        "code",
        """\
tf = d.timeframe
ppy = pd.Timedelta(days=365) / timeframe_to_timedelta(tf)  # bars per year (crypto trades 24/7)
frames = eda.load_symbols(cfg.data, [d.symbol, *compare_symbols], tail=cfg.smoke_bars if smoke else None)
for name, frame in frames.items():
    print(f"{name}: {len(frame):,} bars {frame.index[0]} .. {frame.index[-1]}, columns {list(frame.columns)}")
frames[d.symbol].tail(3)""",
    ),
    (
        "md",
        """\
## Missing data, duplicates and timezones

One row per series: expected vs present bars, gaps (the longest in bars), duplicated or
unsorted timestamps, candles with NaN or impossible OHLC, bars off the timeframe grid, and the
index timezone. The store only holds contract-clean frames, so problems here come from the
source itself (exchange outages show up as gaps).""",
    ),
    (
        "code",
        """\
quality = eda.data_quality_table(frames, tf)
quality""",
    ),
    (
        "md",
        """\
Timezones are the classic silent bug: a CSV exported without offsets reads as naive
timestamps, and an export in local time shifts every bar. The validator names both, and
`preprocess.to_utc` fixes them explicitly. Duplicated rows (overlapping downloads) are
reported too; `frame.normalize` keeps the newest row per timestamp.""",
    ),
    (
        "code",
        """\
sample = frames[d.symbol].head(48)
naive = sample.tz_localize(None)  # what a CSV without offsets gives
local = sample.tz_convert("America/New_York")
duplicated = pd.concat([sample, sample.iloc[[5]]]).sort_index()
for label, frame in [("naive", naive), ("New York", local), ("duplicated", duplicated)]:
    print(f"{label:>10}: {validate_ohlcv(frame, tf).problems()}")
assert to_utc(naive).index.equals(sample.index)  # naive read as UTC
assert to_utc(local).index.equals(sample.index)  # converted back
assert normalize(duplicated).index.equals(sample.index)  # one row per timestamp
print("to_utc and normalize restore the contract")""",
    ),
    ("md", "## Gaps\n\nEach series' coverage in green, missing bars in red."),
    (
        "code",
        """\
fig = eda.plot_gaps(frames, tf)
"""
        + show("gaps")
        + """
gaps = {name: eda.gap_table(frame, tf) for name, frame in frames.items()}
for name, table in gaps.items():
    print(f"{name}: {len(table)} gap(s)" + ("" if table.empty else f", longest:\\n{table.head(5)}"))""",
    ),
    (
        "md",
        """\
## Time alignment across symbols

Cross-asset features and portfolio backtests need the same bars in every series. Bars missing
from one series and present in another must be dropped or filled explicitly
(`preprocess.fill_gaps`), never silently forward-filled by a join.""",
    ),
    (
        "code",
        """\
alignment = eda.alignment_table(frames)
alignment""",
    ),
    ("md", "## Price, volume and volatility"),
    ("code", "fig = eda.plot_prices(frames)\n" + show("prices")),
    ("code", "fig = eda.plot_volume(frames)\n" + show("volume")),
    (
        "code",
        """\
vol_window = max(2, int(pd.Timedelta(days=7) / timeframe_to_timedelta(tf)))  # one week of bars
vol_window = min(vol_window, max(2, len(frames[d.symbol]) // 4))
fig = eda.plot_volatility(frames, vol_window, ppy)
"""
        + show("volatility"),
    ),
    (
        "md",
        """\
## Returns: fat tails and correlation

Bar log-returns: annualized drift and volatility, skew and excess kurtosis (0 for a normal
distribution; crypto is strongly positive), and their correlation across symbols on the
bars all series share.""",
    ),
    (
        "code",
        """\
stats = eda.return_stats(frames, ppy)
display(stats)
corr = eda.log_returns(frames).corr()
fig = eda.plot_heatmap(corr, "Correlation of bar log-returns")
"""
        + show("return_correlation"),
    ),
    (
        "md",
        "## Anomalies worth a look\n\nExtreme moves, zero-volume or flat candles, stale prices.",
    ),
    (
        "code",
        """\
found = {name: anomalies(frame) for name, frame in frames.items()}
for name, items in found.items():
    print(name + ":", "none" if not items else "")
    for item in items:
        print("  -", item)""",
    ),
    (
        "md",
        """\
## Results

Numbers go to `metrics.json` (logged to MLflow by the experiment runner); the tables go to
`notes.md` beside the plots.""",
    ),
    (
        "code",
        """\
metrics = {"symbols": len(frames), "common_bars": int(alignment["in_common"].iloc[0])}
for name in frames:
    key = path_safe(name)
    metrics |= {
        f"{key}.bars": quality.loc[name, "bars"],
        f"{key}.missing_pct": quality.loc[name, "missing_pct"],
        f"{key}.gaps": quality.loc[name, "gaps"],
        f"{key}.duplicates": quality.loc[name, "duplicates"],
        f"{key}.contract_ok": float(quality.loc[name, "contract_ok"]),
        f"{key}.ann_volatility": stats.loc[name, "ann_volatility"],
        f"{key}.excess_kurtosis": stats.loc[name, "excess_kurtosis"],
        f"{key}.anomalies": len(found[name]),
    }
names = list(frames)
for i, a in enumerate(names):
    for b in names[i + 1 :]:
        metrics[f"corr.{path_safe(a)}.{path_safe(b)}"] = corr.loc[a, b]
out.metrics(metrics)

notes = "\\n\\n".join([
    f"# Data exploration: {', '.join(frames)} {tf}",
    f"Source {d.source}, {d.start} to {d.end}{' (smoke run)' if smoke else ''}.",
    "## Quality\\n\\n" + eda.markdown_table(quality.drop(columns=["first", "last"])),
    "## Alignment\\n\\n" + eda.markdown_table(alignment),
    "## Returns\\n\\n" + eda.markdown_table(stats),
    "## Anomalies\\n\\n" + "\\n".join(
        f"- {name}: " + ("; ".join(items) if items else "none") for name, items in found.items()
    ),
])
out.text(notes + "\\n", "notes.md")
if not smoke:  # the documented EDA of the repository; smoke runs never touch docs/
    docs = eda.find_repo_root() / "docs" / "eda"
    docs.mkdir(parents=True, exist_ok=True)
    stem = f"{path_safe(d.symbol)}_{tf}"
    links = []
    for name, figure in figures.items():
        figure.savefig(docs / f"{stem}_{name}.png", dpi=100, bbox_inches="tight")
        links.append(f"![{name}]({stem}_{name}.png)")
    (docs / f"{stem}_exploration.md").write_text(notes + "\\n\\n## Plots\\n\\n" + "\\n\\n".join(links) + "\\n")
    print(f"notes and plots written to {docs}")
scratch.cleanup()
metrics""",
    ),
]

# --------------------------------------------------------------------------- 02
NB02 = [
    (
        "md",
        """\
# 02 · Feature engineering

The experiment's feature spec turned into columns (`cryptoai.features`), exactly as training
builds them: every value at bar *t* uses bars up to *t* only. We look at their warm-up,
distributions and correlations, at how much each one alone says about the next return, and
then select features two ways: **correlation pruning** (drop near-duplicates) and
**importance pruning** (keep the most useful), both fitted on the first walk-forward training
window only, so the choice never sees a test bar.""",
    ),
    (
        "params",
        PARAMETERS
        + "\ncorrelation_threshold = 0.9  # |corr| above this: a near-duplicate\nkeep_share = 0.5  # share of the pruned features importance pruning keeps",
    ),
    (
        "code",
        setup(
            "02-feature-engineering",
            "import numpy as np",
            "from cryptoai.features.engineering import build_features",
            "from cryptoai.features.selection import correlation_prune, importance_prune",
            "from cryptoai.features.spec import load_feature_spec",
            "from cryptoai.research.robustness import feature_groups",
            "from cryptoai.tracking.plots import plot_feature_importance",
            "from cryptoai.modeling.training import build_dataset, plan_splits",
        ),
    ),
    ("md", "## The spec and the columns it makes"),
    (
        "code",
        """\
ohlcv = eda.training_candles(cfg)
spec = load_feature_spec(cfg.features)
raw = build_features(ohlcv, spec)  # every bar, warm-up included
X, y, fwd = build_dataset(ohlcv, cfg)  # what the model trains on: warm-up and unlabelled tail cut
groups = feature_groups(spec)
print(f"{cfg.features}: {len(spec.features)} entries -> {raw.shape[1]} columns on {len(ohlcv):,} bars; "
      f"{len(X):,} usable rows after warm-up")
pd.Series({name: ", ".join(cols) for name, cols in groups.items()}, name="columns").to_frame()""",
    ),
    (
        "md",
        """\
## Warm-up and distributions

`warmup` is the number of leading bars without a value (the longest window decides where
training can start). Heavy tails (large excess kurtosis) suggest a transform or robust model.""",
    ),
    (
        "code",
        """\
summary = eda.describe_features(raw)
out.text(summary.to_csv(), "feature_summary.csv")
summary""",
    ),
    ("code", "fig = eda.plot_feature_distributions(X)\n" + show("distributions")),
    (
        "md",
        "## Correlation matrix\n\nBlocks of red are families of features that say the same thing.",
    ),
    (
        "code",
        """\
corr = X.corr()
fig = eda.plot_heatmap(corr, "Feature correlation (Pearson)")
"""
        + show("correlation")
        + """
upper = corr.where(np.triu(np.ones(corr.shape, dtype=bool), k=1)).stack()
print("most correlated pairs:")
print(upper.abs().sort_values(ascending=False).head(8).round(3).to_string())""",
    ),
    (
        "md",
        """\
## The target and each feature's information coefficient

The target's class balance (a classifier must beat the majority class), then the Spearman
correlation of each feature with the realised forward return over all usable bars: a
model-free hint, not a selection criterion (it looks at every bar, test bars included).""",
    ),
    (
        "code",
        """\
if cfg.task == "classification":
    balance = y.value_counts(normalize=True).sort_index()
    print("class balance:", balance.round(4).to_dict())
else:
    print("target:", y.describe().round(6).to_dict())
ic = eda.feature_target_ic(X, fwd)
fig = plot_feature_importance(ic.index, ic.to_numpy(), top=len(ic))
fig.axes[0].set_title("Information coefficient with the forward return")
"""
        + show("feature_ic"),
    ),
    (
        "md",
        """\
## Feature selection (first training window only)

1. correlation pruning keeps the earlier column (spec order) of every pair with
   |corr| > `correlation_threshold`;
2. importance pruning ranks the rest by a seeded random forest and keeps `keep_share`.""",
    ),
    (
        "code",
        """\
train_rows = plan_splits(cfg, len(X))[0][0]
X_train, y_train = X.iloc[train_rows], y.iloc[train_rows]
kept = correlation_prune(X_train, threshold=correlation_threshold)
ranked = importance_prune(X_train[kept], y_train, keep=len(kept), seed=exp.seed)
n_keep = max(1, int(np.ceil(keep_share * len(kept))))
selected = ranked[:n_keep]
selection = pd.DataFrame({
    "kept_by_correlation": [c in kept for c in X.columns],
    "importance_rank": [ranked.index(c) + 1 if c in ranked else np.nan for c in X.columns],
    "selected": [c in selected for c in X.columns],
}, index=X.columns).rename_axis("feature")
out.text("\\n".join(selected) + "\\n", "selected_features.txt")
print(f"{len(X.columns)} features -> {len(kept)} after correlation pruning -> {len(selected)} selected "
      f"(fitted on {len(train_rows):,} training rows)")
selection.sort_values("importance_rank")""",
    ),
    ("md", "## Results"),
    (
        "code",
        """\
off_diagonal = corr.where(~np.eye(len(corr), dtype=bool)).abs()
metrics = {
    "n_features": X.shape[1],
    "n_bars": len(ohlcv),
    "n_rows": len(X),
    "warmup_bars": int(summary["warmup"].max()),
    "n_after_correlation_pruning": len(kept),
    "n_selected": len(selected),
    "max_abs_correlation": float(off_diagonal.max().max()),
    "mean_abs_ic": float(ic.abs().mean()),
    "max_abs_ic": float(ic.abs().max()),
}
if cfg.task == "classification":
    metrics["majority_share"] = float(balance.max())
out.metrics(metrics)
scratch.cleanup()
metrics""",
    ),
]

# --------------------------------------------------------------------------- 03
NB03 = [
    (
        "md",
        """\
# 03 · Model prototyping

Baselines from simple to deep, each under the experiment's **purged walk-forward
validation** (same folds, same features, same target, same seed), in one table with the
naive baseline (majority class, or a zero-return forecast). A model that does not beat the
naive baseline out of sample has learned nothing tradable.

The experiment's own model comes first; its out-of-sample predictions are saved to
`predictions.parquet` for the backtest (04) and robustness (05) notebooks. In smoke mode every
model is tiny (one epoch for the networks) and only two folds run.""",
    ),
    (
        "params",
        PARAMETERS
        + "\ncandidates = None  # models compared with the config's (None: all six; smoke: four)",
    ),
    (
        "code",
        setup(
            "03-model-prototyping",
            "import time",
            "",
            "from cryptoai.research.robustness import save_predictions",
            "from cryptoai.tracking.plots import plot_calibration, plot_confusion_matrix",
            "from cryptoai.modeling.training import HEADLINE, train",
        ),
    ),
    (
        "md",
        """\
## Train every candidate

Parameters come from `configs/models/NAME.yaml` (their `smoke_params` in smoke mode); the
experiment's model keeps the experiment's parameters. Models that cannot do the task are
left out (e.g. logistic regression on a return target). A smoke run compares the tabular
models and one recurrent network unless `candidates` says otherwise.""",
    ),
    (
        "code",
        """\
ALL_MODELS = ["logreg", "random_forest", "xgboost", "lstm", "gru", "tft"]
SMOKE_MODELS = ["logreg", "random_forest", "xgboost", "gru"]  # one recurrent net is enough to check
names = candidates if candidates is not None else (SMOKE_MODELS if smoke else ALL_MODELS)
configs = eda.model_candidates(exp, names, smoke=smoke, work_dir=scratch.name)
results, seconds = {}, {}
for name, model_cfg in configs.items():
    t0 = time.perf_counter()
    results[name] = train(model_cfg, tracking=False, progress=False)
    seconds[name] = time.perf_counter() - t0
    print(f"{name:>14}: {seconds[name]:6.1f} s  {model_cfg.model.params}")
main = results[exp.model.name]
main.folds""",
    ),
    (
        "md",
        """\
## One table

Pooled out-of-sample metrics over all test bars (`ic` and `hit_rate` against the realised
forward return), the fold-to-fold spread of the IC, and training time. The last row is the
naive baseline on the same folds.""",
    ),
    (
        "code",
        """\
headline = HEADLINE[cfg.task]
rows = {name: {**r.aggregate, "seconds": seconds[name]} for name, r in results.items()}
rows["naive baseline"] = main.baseline_aggregate
table = eda.comparison_table(rows, [*headline, "ic_std", "seconds"])
out.text(table.to_csv(), "comparison.csv")
table""",
    ),
    (
        "code",
        """\
primary = "balanced_accuracy" if cfg.task == "classification" else "ic"
fig = eda.plot_metric_comparison(table, primary, reference="naive baseline")
"""
        + show("comparison"),
    ),
    (
        "md",
        """\
## The experiment's model, fold by fold

Per-fold metrics, their mean, all test bars pooled and the baseline: a model that wins on
average but loses in most folds is not robust.""",
    ),
    (
        "code",
        """\
display(main.summary())
if cfg.task == "classification":
    p = main.predictions.dropna(subset=["pred", "y_true"])
    fig = plot_confusion_matrix(p["y_true"], p["pred"])
"""
        + "    "
        + show("confusion_matrix").replace("\n", "\n    ")
        + """
    if sorted(c for c in p.columns if c.startswith("proba_")) == ["proba_0", "proba_1"]:
        fig = plot_calibration(p["y_true"], p["proba_1"])
"""
        + "        "
        + show("calibration").replace("\n", "\n        "),
    ),
    (
        "md",
        """\
## Save the out-of-sample predictions

One row per test bar (index `timestamp`): `y_true`, `pred`, `score` (the trading signal),
class probabilities, `fold` and the realised `forward_return`. No training bar is in it.""",
    ),
    (
        "code",
        """\
path = save_predictions(main.predictions, cfg, out.dir)
print(f"{len(main.predictions):,} out-of-sample predictions of {exp.model.name} -> {path}")
metrics = dict(main.aggregate)
metrics |= {f"baseline.{k}": v for k, v in main.baseline_aggregate.items()}
for name, r in results.items():
    metrics |= {f"compare.{name}.{m}": r.aggregate.get(m, float("nan")) for m in headline}
    metrics[f"compare.{name}.seconds"] = seconds[name]
metrics |= {"n_predictions": len(main.predictions), "n_folds": len(main.folds)}
out.metrics(metrics)
scratch.cleanup()
{k: metrics[k] for k in headline if k in metrics}""",
    ),
]

# --------------------------------------------------------------------------- 04
NB04 = [
    (
        "md",
        """\
# 04 · Backtesting

The experiment's model traded as its config says (`backtest:` strategy, thresholds, costs)
on the bars it predicted out of sample, and **buy-and-hold beside it on the same bars with the
same costs**. A signal computed at a bar's close fills at the next bar's open (default), with
fees and slippage; nothing reads a later bar.

The predictions come from notebook 03 (`{output_dir}/03-model-prototyping/predictions.parquet`)
when it ran with this config; otherwise the model is trained here first.""",
    ),
    ("params", PARAMETERS),
    (
        "code",
        setup(
            "04-backtesting",
            "from cryptoai.backtest.metrics import compute_metrics",
            "from cryptoai.backtest.report import write_report",
            "from cryptoai.research.robustness import backtest_window, load_predictions, model_backtest, prediction_signal",
            "from cryptoai.modeling.training import train",
        ),
    ),
    ("md", "## Predictions to signal"),
    (
        "code",
        """\
predictions = load_predictions(cfg, output_root / "03-model-prototyping")
from_notebook_03 = predictions is not None
if not from_notebook_03:
    print("no predictions from notebook 03 for this config: training the model here")
    predictions = train(cfg, tracking=False, progress=False).predictions
ohlcv = eda.training_candles(cfg)
bars = backtest_window(ohlcv, predictions)
signal = prediction_signal(predictions)
spec = exp.backtest
print(f"{len(predictions):,} predictions ({'notebook 03' if from_notebook_03 else 'trained here'}), "
      f"backtest over {len(bars):,} bars {bars.index[0]} .. {bars.index[-1]}")
print(f"strategy {spec.strategy} {spec.params}; fees {spec.fee_bps} bps, slippage {spec.slippage_bps} bps, "
      f"fill at {spec.fill_at}")
thresholds = {k: v for k, v in spec.params.items() if k in ("long_above", "short_below")}
fig = eda.plot_signal_histogram(signal, thresholds)
"""
        + show("signal"),
    ),
    ("md", "## Strategy vs buy-and-hold"),
    (
        "code",
        """\
result, benchmark = model_backtest(bars, signal, spec)
paths = write_report(
    result, benchmark, bars, out.dir,
    title=f"{exp.experiment_id} {exp.name}: {spec.strategy} vs buy-and-hold",
)
strategy_metrics, benchmark_metrics = compute_metrics(result), compute_metrics(benchmark)
side_by_side = eda.comparison_table(
    {spec.strategy: strategy_metrics, "buy and hold": benchmark_metrics}
).T
side_by_side""",
    ),
    (
        "md",
        "## The report's plots\n\nEquity and drawdown against buy-and-hold, monthly returns, trades on the price.",
    ),
    (
        "code",
        """\
for key in ("equity_plot", "drawdown_plot", "monthly_plot", "trades_plot"):
    display(Image(filename=str(paths[key])))""",
    ),
    ("md", "## Trades\n\nRound trips (net of fees); the full list is in `trades.csv`."),
    ("code", "result.trades.head(10)"),
    (
        "md",
        """\
## Results

`write_report` wrote `metrics.json` (the strategy's metrics with buy-and-hold nested under
`benchmark`), `trades.csv`, `equity.csv`, the plots and `backtest_report.md`; a few
comparisons are added to `metrics.json`.""",
    ),
    (
        "code",
        """\
extra = {
    "excess_return": strategy_metrics["total_return"] - benchmark_metrics["total_return"],
    "excess_sharpe": strategy_metrics["sharpe"] - benchmark_metrics["sharpe"],
    "n_predictions": len(predictions),
    "predictions_from_03": float(from_notebook_03),
}
out.metrics(extra)
scratch.cleanup()
display(Markdown(paths["report"].read_text().split("## Plots")[0]))""",
    ),
]

# --------------------------------------------------------------------------- 05
NB05 = [
    (
        "md",
        """\
# 05 · Robustness

Does the result survive changes it should survive? The same model and backtest
(`cryptoai.research.robustness`) under:

1. **several periods**: the backtest re-run from flat on consecutive blocks, each against
   buy-and-hold;
2. **regimes**: calm vs volatile and rising vs falling markets (labels from trailing
   volatility and trend; the cut points use the whole sample, so they describe it after the
   fact and are never traded on);
3. **parameter variation**: entry thresholds and costs around the config's values;
4. **feature ablation**: the model retrained without each feature group.

A robust edge shows up in most periods and regimes, survives realistic costs and does not
hinge on one threshold or one feature family.""",
    ),
    (
        "params",
        PARAMETERS
        + "\nn_periods = 4  # consecutive blocks of the backtest\nablation = True  # retrain without each feature group (slow for sequence models)",
    ),
    (
        "code",
        setup(
            "05-robustness",
            "import numpy as np",
            "",
            "from cryptoai.backtest.metrics import periods_per_year",
            "from cryptoai.data.timeframes import timeframe_to_timedelta",
            "from cryptoai.features.spec import load_feature_spec",
            "from cryptoai.research import robustness as rb",
            "from cryptoai.tracking.plots import plot_feature_importance",
            "from cryptoai.modeling.training import build_dataset, train",
        ),
    ),
    (
        "code",
        """\
predictions = rb.load_predictions(cfg, output_root / "03-model-prototyping")
if predictions is None:
    print("no predictions from notebook 03 for this config: training the model here")
    predictions = train(cfg, tracking=False, progress=False).predictions
ohlcv = eda.training_candles(cfg)
bars = rb.backtest_window(ohlcv, predictions)
signal = rb.prediction_signal(predictions)
spec = exp.backtest
ppy = periods_per_year(bars.index)
result, benchmark = rb.model_backtest(bars, signal, spec)
print(f"{len(bars):,} bars; final equity {result.final_equity:,.2f} vs buy-and-hold {benchmark.final_equity:,.2f}")""",
    ),
    ("md", "## 1. Periods"),
    (
        "code",
        """\
periods = rb.period_backtests(bars, signal, spec, n_periods)
fig = eda.plot_grouped_bars(
    periods.set_axis([f"{s:%Y-%m-%d}" for s in periods["start"]]),
    ["strategy_total_return", "benchmark_total_return"], "Return per period",
)
"""
        + show("periods")
        + """
periods""",
    ),
    ("md", "## 2. Regimes"),
    (
        "code",
        """\
window = max(2, int(pd.Timedelta(days=7) / timeframe_to_timedelta(d.timeframe)))
window = min(window, max(2, len(ohlcv) // 4))
regimes = {
    "volatility": rb.volatility_regimes(ohlcv["close"], window),
    "trend": rb.trend_regimes(ohlcv["close"], window),
}
by_regime = {}
for kind, labels in regimes.items():
    table = pd.concat({
        "strategy": rb.metrics_by_label(result.equity, result.initial_cash, labels, ppy),
        "benchmark": rb.metrics_by_label(benchmark.equity, benchmark.initial_cash, labels, ppy),
    }, axis=1)
    quality = rb.signal_quality_by_label(predictions, labels)
    by_regime[kind] = table.join(pd.concat({"signal": quality}, axis=1))
    display(Markdown(f"**{kind}** ({window}-bar window)"))
    display(by_regime[kind])
returns = pd.concat({k: t[[("strategy", "total_return"), ("benchmark", "total_return")]] for k, t in by_regime.items()})
returns.columns = ["strategy_total_return", "benchmark_total_return"]
returns.index = [f"{k}: {label}" for k, label in returns.index]
fig = eda.plot_grouped_bars(returns, list(returns.columns), "Return by regime")
"""
        + show("regimes"),
    ),
    (
        "md",
        """\
## 3. Parameter variation

Entry thresholds on a grid of the signal's own quantiles (plus the config's values), at the
config's costs; then fees and slippage from zero to punitive at the config's thresholds.""",
    ),
    (
        "code",
        """\
grid_thresholds = {}
if spec.strategy == "model_signal":
    def levels(quantiles, configured):
        values = {round(float(v), 4) for v in signal.quantile(quantiles)}
        return sorted(values | ({float(configured)} if configured is not None else set()))

    grid_thresholds = {
        "long_above": levels([0.5, 0.6, 0.7, 0.8, 0.9], spec.params.get("long_above", 0.55)),
        "short_below": levels([0.1, 0.2, 0.3, 0.4, 0.5], spec.params.get("short_below")),
    }
    thresholds = rb.parameter_variation(bars, signal, spec, grid_thresholds)
    sharpe = thresholds.pivot(index="short_below", columns="long_above", values="sharpe")
    fig = eda.plot_heatmap(sharpe, "Sharpe by entry thresholds (costs on)", vmin=None, vmax=None, cmap="RdYlGn", fmt="{:.1f}")
"""
        + "    "
        + show("thresholds").replace("\n", "\n    ")
        + """
costs = rb.parameter_variation(bars, signal, spec, {"fee_bps": [0.0, 2.0, 5.0, 10.0, 20.0, 40.0], "slippage_bps": [0.0, 2.0, 10.0]})
fees = costs.pivot(index="fee_bps", columns="slippage_bps", values="total_return")
fig = eda.plot_heatmap(fees, "Total return by fees and slippage (bps)", vmin=None, vmax=None, cmap="RdYlGn", fmt="{:.1%}")
"""
        + show("costs")
        + """
fees""",
    ),
    (
        "md",
        """\
## 4. Feature ablation

The experiment's model on the same folds without each feature group. A group whose removal
hurts the most carries the signal; one whose removal helps is noise the model overfits.""",
    ),
    (
        "code",
        """\
primary = "balanced_accuracy" if cfg.task == "classification" else "ic"
if ablation:
    X, y, fwd = build_dataset(ohlcv, cfg)
    groups = rb.feature_groups(load_feature_spec(cfg.features))
    ablated = rb.feature_ablation(cfg, X, y, fwd, groups)
    drop = ablated.loc["all features", primary] - ablated[primary].drop("all features")
    fig = plot_feature_importance([n.removeprefix("without ") for n in drop.index], drop.to_numpy(), top=len(drop))
    fig.axes[0].set_title(f"Loss of {primary} without each feature group")
"""
        + "    "
        + show("ablation").replace("\n", "\n    ")
        + """
    display(ablated)""",
    ),
    ("md", "## Results"),
    (
        "code",
        """\
metrics = {
    "periods.n": len(periods),
    "periods.share_beating_benchmark": float((periods["excess_return"] > 0).mean()),
    "periods.share_positive": float((periods["strategy_total_return"] > 0).mean()),
    "periods.worst_return": float(periods["strategy_total_return"].min()),
    "periods.excess_return_std": float(periods["excess_return"].std(ddof=1)) if len(periods) > 1 else float("nan"),
}
for kind, table in by_regime.items():
    for label, row in table.iterrows():
        key = f"regime.{kind}.{str(label).replace(' ', '_')}"
        metrics[f"{key}.sharpe"] = row[("strategy", "sharpe")]
        metrics[f"{key}.excess_return"] = row[("strategy", "total_return")] - row[("benchmark", "total_return")]
        metrics[f"{key}.ic"] = row[("signal", "ic")]
if grid_thresholds:
    metrics |= {
        "thresholds.n": len(thresholds),
        "thresholds.best_sharpe": float(thresholds["sharpe"].max()),
        "thresholds.worst_sharpe": float(thresholds["sharpe"].min()),
        "thresholds.share_positive_return": float((thresholds["total_return"] > 0).mean()),
    }
base = costs[(costs["fee_bps"] == 0) & (costs["slippage_bps"] == 0)]["total_return"].iloc[0]
metrics |= {"costs.zero_cost_return": base, "costs.worst_return": float(costs["total_return"].min())}
if ablation:
    metrics[f"ablation.all.{primary}"] = ablated.loc["all features", primary]
    metrics |= {f"ablation.{name.removeprefix('without ')}.loss": v for name, v in drop.items()}
out.metrics(metrics)
scratch.cleanup()
{k: v for k, v in metrics.items() if k.startswith("periods.")}""",
    ),
]

NOTEBOOKS = {
    "01-data-exploration": NB01,
    "02-feature-engineering": NB02,
    "03-model-prototyping": NB03,
    "04-backtesting": NB04,
    "05-robustness": NB05,
}
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def build(name: str) -> nbformat.NotebookNode:
    """One notebook, with stable cell ids and no outputs."""
    cells = []
    for i, (kind, source) in enumerate(NOTEBOOKS[name]):
        if kind == "md":
            cell = new_markdown_cell(source)
        else:
            cell = new_code_cell(source)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
        cell.id = f"cell-{i:02d}"
        cells.append(cell)
    nb = new_notebook(
        cells=cells,
        metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}},
    )
    nbformat.validate(nb)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a notebook is stale")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        path = HERE / f"{name}.ipynb"
        text = nbformat.writes(build(name)) + "\n"
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)}: run python notebooks/_build_notebooks.py")  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
