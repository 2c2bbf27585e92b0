"""Helpers the research notebooks share: setup, data and feature summaries, plots, tables.

Notebooks stay thin by calling these. Summaries are pure functions returning DataFrames;
plots return bare ``matplotlib.figure.Figure`` objects (no pyplot state), so they work in
batch kernels and are saved with ``NotebookOutputs.figure``.

The setup part makes one notebook run the same from JupyterLab (cwd ``notebooks/``), from
papermill with any cwd, and from the experiment runner: relative paths are looked up from
the working directory first, then from the repository root.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure

from cryptoai.errors import BadInputError, CryptoaiError
from cryptoai.paths import repo_root

if TYPE_CHECKING:
    from cryptoai.modeling.training import DataConfig, TrainConfig
    from cryptoai.research.experiment_config import ExperimentConfig

log = logging.getLogger(__name__)

Frames = Mapping[str, pd.DataFrame]


# ===================================================================== notebook setup
def resolve_path(path: str | Path, root: str | Path | None = None) -> Path:
    """An absolute path for ``path``: as given if absolute; else the first that exists of
    cwd/path, root/path and root/notebooks/path (so ``../configs/x.yaml`` written for
    ``notebooks/`` works anywhere); else root/path (for outputs not created yet)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    base = Path(root) if root is not None else repo_root(via_package=True)
    for candidate in (Path.cwd() / p, base / p, base / "notebooks" / p):
        if candidate.exists():
            return candidate.resolve()
    return (base / p).resolve()


def notebook_experiment(
    config_path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    start: str | None = None,
    end: str | None = None,
    seed: int | None = None,
    store_root: str | Path | None = None,
    root: str | Path | None = None,
) -> ExperimentConfig:
    """The experiment config a notebook runs: the file, the notebook's parameters on top
    (``None`` keeps the config's value), and every path in it made absolute."""
    from cryptoai.modeling.training import DataConfig
    from cryptoai.research.experiment_config import load_experiment

    base = Path(root) if root is not None else repo_root(via_package=True)
    path = resolve_path(config_path, base)
    if not path.is_file():
        raise BadInputError(
            f"experiment config {config_path} not found (looked from {Path.cwd()} and {base}):"
            " set config_path to a file under configs/experiments/"
        )
    exp = load_experiment(path)
    ds = exp.dataset.model_dump()
    given = {"symbol": symbol, "timeframe": timeframe, "start": start, "end": end}
    ds.update({k: v for k, v in given.items() if v is not None})
    ds["store_root"] = str(resolve_path(store_root or ds["store_root"], base))
    if ds.get("file"):
        ds["file"] = str(resolve_path(ds["file"], base))
    update: dict[str, Any] = {
        "dataset": DataConfig.model_validate(ds),
        "features": str(resolve_path(exp.features, base)),
    }
    if seed is not None:
        update["seed"] = int(seed)
    return exp.model_copy(update=update)


def notebook_train_config(
    exp: ExperimentConfig, *, smoke: bool, work_dir: str | Path
) -> TrainConfig:
    """The experiment's training config as notebooks run it: smoke-sized when asked, no
    final refit (notebooks judge out-of-sample predictions only), and any checkpoint files
    under ``work_dir`` (a scratch folder) instead of the working directory."""
    cfg = exp.train_config(smoke=smoke)
    return cfg.model_copy(update={"output_dir": str(work_dir), "fit_final": False})


def model_candidates(
    exp: ExperimentConfig,
    names: Sequence[str],
    *,
    smoke: bool,
    work_dir: str | Path,
    models_dir: str | Path | None = None,
) -> dict[str, TrainConfig]:
    """Training configs that differ from the experiment's only in the model: the
    experiment's own model first, then each of ``names`` with its parameters (and smoke
    parameters) from ``configs/models/NAME.yaml`` when that file exists. Models that cannot
    do the experiment's task (e.g. logreg on a return target) are left out with a warning."""
    from cryptoai.modeling.models import available_models
    from cryptoai.modeling.training import ModelConfig, load_train_config, smoke_config

    folder = (
        Path(models_dir)
        if models_dir is not None
        else repo_root(via_package=True) / "configs" / "models"
    )
    base = exp.train_config(smoke=False).model_copy(
        update={"output_dir": str(work_dir), "fit_final": False}
    )
    usable = set(available_models(base.task))
    out: dict[str, TrainConfig] = {}
    for name in dict.fromkeys([exp.model.name, *names]):
        if name not in usable:
            log.warning("model %s does not do %s: left out of the comparison", name, base.task)
            continue
        if name == exp.model.name:
            model = exp.model
        elif (folder / f"{name}.yaml").is_file():
            model = load_train_config(folder / f"{name}.yaml").model
        else:
            model = ModelConfig(name=name)
        cfg = base.model_copy(update={"model": model, "name": f"{exp.name}-{name}"})
        out[name] = smoke_config(cfg) if smoke else cfg
    return out


def training_candles(cfg: TrainConfig) -> pd.DataFrame:
    """The candles ``train(cfg)`` uses: the dataset, cut to the last ``smoke_bars`` in smoke
    mode, so a notebook's plots and tables describe exactly the bars the model saw."""
    from cryptoai.modeling.training import load_training_data

    ohlcv = load_training_data(cfg.data)
    return ohlcv.iloc[-cfg.smoke_bars :] if cfg.smoke else ohlcv


def load_symbols(
    data: DataConfig, symbols: Sequence[str], tail: int | None = None
) -> dict[str, pd.DataFrame]:
    """Candles of several symbols from the same source, period and timeframe as ``data``.

    A symbol that cannot be loaded (not in the store of a real exchange) is left out with a
    warning, so exploration goes on with what is there. ``tail`` keeps the last bars only.
    """
    from cryptoai.data.symbols import canonical
    from cryptoai.modeling.training import load_training_data

    frames: dict[str, pd.DataFrame] = {}
    for sym in dict.fromkeys(canonical(s) for s in symbols):
        same = sym == canonical(data.symbol)  # the dataset itself, possibly a file
        try:
            frame = load_training_data(
                data if same else data.model_copy(update={"symbol": sym, "file": None})
            )
        except CryptoaiError as exc:
            log.warning("left out %s: %s", sym, exc)
            continue
        frames[sym] = frame.iloc[-tail:] if tail else frame
    if not frames:
        raise BadInputError(
            f"none of {', '.join(symbols)} could be loaded: fetch them first (cryptoai fetch)"
        )
    return frames


# ================================================================= data exploration
def data_quality_table(frames: Frames, timeframe: str | None = None) -> pd.DataFrame:
    """One row per series: coverage, missing bars, gaps, duplicates, timezone, contract."""
    from cryptoai.data.validate import validate_ohlcv

    rows = {}
    for name, df in frames.items():
        rep = validate_ohlcv(df, timeframe)
        tz = df.index.tz if isinstance(df.index, pd.DatetimeIndex) else None
        rows[name] = {
            "first": rep.first,
            "last": rep.last,
            "bars": rep.n_bars,
            "expected": rep.expected_bars,
            "missing": rep.missing_bars,
            "missing_pct": rep.missing_pct,
            "gaps": len(rep.gaps),
            "longest_gap": max((g[2] for g in rep.gaps), default=0),
            "duplicates": len(rep.duplicates),
            "unsorted": len(rep.unsorted),
            "nan_rows": len(rep.nan_rows),
            "ohlc_violations": len(rep.ohlc_violations),
            "off_grid": len(rep.off_grid),
            "timezone": str(tz) if tz is not None else "naive",
            "contract_ok": rep.ok,
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("series")


def gap_table(frame: pd.DataFrame, timeframe: str | None = None) -> pd.DataFrame:
    """Every gap of a series, longest first: first missing bar, next bar, bars missing."""
    from cryptoai.data.validate import validate_ohlcv

    rep = validate_ohlcv(frame, timeframe)
    table = pd.DataFrame(rep.gaps, columns=["start", "end", "missing_bars"])
    table["duration"] = table["end"] - table["start"]
    return table.sort_values(["missing_bars", "start"], ascending=[False, True], ignore_index=True)


def alignment_table(frames: Frames) -> pd.DataFrame:
    """How well series line up in time: bars, span, and bars shared with every other series."""
    if not frames:
        raise BadInputError("alignment_table needs at least one series")
    common = None
    for df in frames.values():
        common = df.index if common is None else common.intersection(df.index)
    rows = {
        name: {
            "first": df.index.min(),
            "last": df.index.max(),
            "bars": len(df),
            "in_common": len(common),
            "not_in_common": int((~df.index.isin(common)).sum()),
        }
        for name, df in frames.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("series")


def log_returns(frames: Frames, column: str = "close") -> pd.DataFrame:
    """Bar log-returns of each series side by side, on the bars all series share."""
    closes = pd.concat({name: df[column] for name, df in frames.items()}, axis=1, join="inner")
    return np.log(closes).diff().iloc[1:]


def rolling_volatility(close: pd.Series, window: int, periods_per_year: float) -> pd.Series:
    """Annualized standard deviation of the last ``window`` bar log-returns (known at t)."""
    if int(window) != window or window < 2:
        raise BadInputError(f"window must be a whole number of bars >= 2, got {window!r}")
    r = np.log(close.astype("float64")).diff()
    return (r.rolling(int(window)).std(ddof=1) * math.sqrt(periods_per_year)).rename("volatility")


def return_stats(frames: Frames, periods_per_year: float) -> pd.DataFrame:
    """Stylized facts per series from bar log-returns: annualized drift and volatility,
    skew, excess kurtosis (fat tails: > 0) and the worst and best bar."""
    rows = {}
    for name, df in frames.items():
        r = np.log(df["close"].astype("float64")).diff().dropna()
        rows[name] = {
            "bars": len(r),
            "ann_return": r.mean() * periods_per_year,
            "ann_volatility": r.std(ddof=1) * math.sqrt(periods_per_year),
            "skew": r.skew(),
            "excess_kurtosis": r.kurt(),
            "worst_bar": r.min(),
            "best_bar": r.max(),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("series")


def _utc_naive(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return index.tz_convert(None) if index.tz is not None else index


def _figure(rows: int = 1, height: float = 3.2, width: float = 10.0, **kw: Any):
    fig = Figure(figsize=(width, height * rows), layout="constrained")
    axes = fig.subplots(rows, 1, squeeze=False, **kw)[:, 0]
    return fig, axes


def plot_prices(frames: Frames) -> Figure:
    """Close of each series relative to its first bar (log scale), so assets at very
    different price levels share one axis."""
    fig, (ax,) = _figure(height=3.8)
    for name, df in frames.items():
        close = df["close"].astype("float64")
        ax.plot(_utc_naive(df.index), close / close.iloc[0], lw=0.9, label=name)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.axhline(1.0, color="black", lw=0.6)
    ax.set_ylabel("close / first close")
    ax.set_title("Price (normalized)")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def plot_volume(frames: Frames, freq: str = "1D") -> Figure:
    """Traded value (volume x close) summed per ``freq``: one panel per series."""
    fig, axes = _figure(rows=len(frames), height=2.2, sharex=True)
    for ax, (name, df) in zip(axes, frames.items(), strict=True):
        value = (df["volume"] * df["close"]).resample(freq).sum(min_count=1)
        ax.bar(_utc_naive(value.index), value.to_numpy(), width=0.9, color="tab:gray")
        ax.set_ylabel("quote volume")
        ax.set_title(f"{name}: traded value per {freq}", fontsize=10)
        ax.grid(alpha=0.3)
    return fig


def plot_volatility(frames: Frames, window: int, periods_per_year: float) -> Figure:
    """Rolling annualized volatility of each series (volatility clusters show as waves)."""
    fig, (ax,) = _figure(height=3.4)
    for name, df in frames.items():
        vol = rolling_volatility(df["close"], window, periods_per_year)
        ax.plot(_utc_naive(vol.index), vol.to_numpy(), lw=0.9, label=name)
    ax.set_ylabel("annualized volatility")
    ax.set_title(f"Rolling volatility ({window} bars)")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def plot_gaps(frames: Frames, timeframe: str | None = None) -> Figure:
    """Where bars are missing: each gap drawn as a red span on its series' timeline."""
    from cryptoai.data.validate import validate_ohlcv

    names = list(frames)
    fig = Figure(figsize=(10.0, 0.9 + 0.5 * len(names)), layout="constrained")
    ax = fig.add_subplot()
    total = 0
    for row, name in enumerate(names):
        df = frames[name]
        rep = validate_ohlcv(df, timeframe)
        if rep.first is None:
            continue
        first, last = _utc_naive(pd.DatetimeIndex([rep.first, rep.last]))
        ax.plot([first, last], [row, row], color="tab:green", lw=6, solid_capstyle="butt")
        for start, end, _ in rep.gaps:
            s, e = _utc_naive(pd.DatetimeIndex([start, end]))
            ax.plot([s, e], [row, row], color="tab:red", lw=10, solid_capstyle="butt")
        total += len(rep.gaps)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.set_title(f"Coverage (green) and gaps (red): {total} gap(s)")
    ax.grid(alpha=0.3, axis="x")
    return fig


def plot_heatmap(
    matrix: pd.DataFrame,
    title: str = "",
    *,
    vmin: float | None = -1.0,
    vmax: float | None = 1.0,
    cmap: str = "RdBu_r",
    annotate: bool | None = None,
    fmt: str = "{:.2f}",
) -> Figure:
    """A labelled heatmap (correlations, parameter grids); values written in the cells when
    the matrix is small enough to read them (``annotate=None``)."""
    values = matrix.to_numpy(dtype="float64")
    n_rows, n_cols = values.shape
    if annotate is None:
        annotate = n_rows * n_cols <= 150
    fig = Figure(
        figsize=(max(4.5, 0.45 * n_cols + 2.5), max(3.5, 0.35 * n_rows + 1.5)),
        layout="constrained",
    )
    ax = fig.add_subplot()
    image = ax.imshow(values, vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto")
    ax.set_xticks(range(n_cols), [str(c) for c in matrix.columns], rotation=60, ha="right")
    ax.set_yticks(range(n_rows), [str(i) for i in matrix.index])
    if matrix.columns.name:
        ax.set_xlabel(str(matrix.columns.name))
    if matrix.index.name:
        ax.set_ylabel(str(matrix.index.name))
    if annotate:
        for i in range(n_rows):
            for j in range(n_cols):
                if np.isfinite(values[i, j]):
                    ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title)
    return fig


# ======================================================================== features
def describe_features(features: pd.DataFrame) -> pd.DataFrame:
    """One row per feature: warm-up bars (leading NaN), NaN share, and distribution."""
    rows = {}
    for col in features.columns:
        x = features[col].astype("float64")
        finite = np.isfinite(x.to_numpy())
        q = x[finite].quantile([0.01, 0.5, 0.99]) if finite.any() else pd.Series([np.nan] * 3)
        rows[col] = {
            "warmup": int(np.argmax(finite)) if finite.any() else len(x),
            "nan_share": float(1.0 - finite.mean()) if len(x) else math.nan,
            "mean": x[finite].mean(),
            "std": x[finite].std(ddof=1),
            "min": x[finite].min(),
            "p01": q.iloc[0],
            "median": q.iloc[1],
            "p99": q.iloc[2],
            "max": x[finite].max(),
            "skew": x[finite].skew(),
            "excess_kurtosis": x[finite].kurt(),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("feature")


def plot_feature_distributions(
    features: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    ncols: int = 4,
    bins: int = 40,
    clip: tuple[float, float] = (0.005, 0.995),
) -> Figure:
    """A grid of histograms, one per feature, clipped to the ``clip`` quantiles so a few
    extreme bars do not squash the shape."""
    cols = list(columns) if columns is not None else list(features.columns)
    if not cols:
        raise BadInputError("plot_feature_distributions got no feature columns")
    nrows = -(-len(cols) // ncols)
    # A fixed layout and one step artist per panel: a constrained layout or one patch per
    # bin makes a grid of dozens of histograms take many seconds to draw.
    fig = Figure(figsize=(3.0 * ncols, 2.2 * nrows))
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.05, top=0.95, hspace=0.55, wspace=0.3)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, col in zip(axes, cols, strict=False):
        x = features[col].to_numpy(dtype="float64")
        x = x[np.isfinite(x)]
        if x.size == 0:
            ax.set_title(f"{col} (no values)", fontsize=8)
            continue
        lo, hi = np.quantile(x, clip)
        inside = x[(x >= lo) & (x <= hi)]
        counts, edges = np.histogram(inside, bins=bins)
        ax.stairs(counts, edges, fill=True, color="tab:blue", alpha=0.8)
        ax.set_title(col, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(cols) :]:
        ax.set_axis_off()
    fig.suptitle(f"Feature distributions ({clip[0]:.1%} to {clip[1]:.1%} quantiles)", fontsize=10)
    return fig


def feature_target_ic(features: pd.DataFrame, forward_return: pd.Series) -> pd.Series:
    """Spearman rank correlation of each feature with the realised forward return: a quick,
    model-free view of which features carry any signal on this sample."""
    from cryptoai.modeling.evaluation import information_coefficient

    ret = forward_return.reindex(features.index)
    return pd.Series(
        {c: information_coefficient(features[c], ret) for c in features.columns}, name="ic"
    ).rename_axis("feature")


# ====================================================================== comparison
def comparison_table(
    results: Mapping[str, Mapping[str, float]], metrics: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per model (in the given order), one column per metric; missing ones NaN."""
    if not results:
        raise BadInputError("comparison_table got no results to compare")
    if metrics is None:
        metrics = list(dict.fromkeys(k for r in results.values() for k in r))
    names = list(metrics)
    rows = {name: [float(r.get(m, np.nan)) for m in names] for name, r in results.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=names).rename_axis("model")


def plot_metric_comparison(
    table: pd.DataFrame, metric: str, reference: str | None = None
) -> Figure:
    """Horizontal bars of one metric per row of a comparison table; the ``reference`` row
    (e.g. the naive baseline) drawn as a dashed line to beat."""
    if metric not in table.columns:
        raise BadInputError(
            f"no metric {metric!r} in the table: choose one of {', '.join(table.columns)}"
        )
    values = table[metric].astype("float64")
    fig = Figure(figsize=(7.0, 1.2 + 0.4 * len(values)), layout="constrained")
    ax = fig.add_subplot()
    ypos = np.arange(len(values))[::-1]
    colors = ["tab:gray" if name == reference else "tab:blue" for name in values.index]
    ax.barh(ypos, values.fillna(0.0).to_numpy(), color=colors)
    ax.set_yticks(ypos, [str(i) for i in values.index])
    if reference is not None and reference in values.index and np.isfinite(values[reference]):
        ax.axvline(values[reference], color="black", ls="--", lw=1, label=reference)
        ax.legend(loc="lower right")
    finite = values[np.isfinite(values.to_numpy())]
    if len(finite):
        lo, hi = float(finite.min()), float(finite.max())
        pad = 0.1 * (hi - lo) or 0.05 * abs(hi) or 0.05
        ax.set_xlim(min(0.0, lo - pad), max(0.0, hi + pad))  # bars start at zero: honest lengths
    ax.set_xlabel(metric)
    ax.set_title(f"{metric} by model (out of sample)")
    ax.grid(alpha=0.3, axis="x")
    return fig


def plot_signal_histogram(
    signal: pd.Series, thresholds: Mapping[str, float | None] | None = None, bins: int = 50
) -> Figure:
    """Distribution of the traded signal with the strategy's thresholds drawn on it: how
    often the model is confident enough to trade at all."""
    x = signal.astype("float64")
    x = x[np.isfinite(x.to_numpy())]
    if x.empty:
        raise BadInputError("the signal has no finite values to plot")
    fig = Figure(figsize=(7.0, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.hist(x, bins=bins, color="tab:blue", alpha=0.8)
    for (name, value), color in zip(
        (thresholds or {}).items(), ("tab:green", "tab:red", "tab:orange"), strict=False
    ):
        if value is not None:
            share = (x > value).mean() if "long" in name else (x < value).mean()
            ax.axvline(float(value), color=color, ls="--", label=f"{name}={value} ({share:.0%})")
    if thresholds:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel(str(signal.name or "signal"))
    ax.set_ylabel("bars")
    ax.set_title("Out-of-sample signal and trading thresholds")
    return fig


def plot_grouped_bars(frame: pd.DataFrame, columns: Sequence[str], title: str = "") -> Figure:
    """Bars of several columns side by side for each row (e.g. strategy and benchmark
    return per period or per regime)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BadInputError(f"no column(s) {', '.join(missing)} in the table to plot")
    n_rows, n_cols = len(frame), len(columns)
    fig = Figure(figsize=(max(6.0, 1.0 + 0.9 * n_rows * n_cols / 2), 3.4), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / n_cols
    x = np.arange(n_rows)
    for j, col in enumerate(columns):
        ax.bar(x + (j - (n_cols - 1) / 2) * width, frame[col].astype("float64"), width, label=col)
    ax.set_xticks(x, [str(i) for i in frame.index], rotation=20, ha="right")
    ax.axhline(0.0, color="black", lw=0.6)
    ax.legend(fontsize=8)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    return fig


def markdown_table(frame: pd.DataFrame, floatfmt: str = "{:.4g}") -> str:
    """A DataFrame as a GitHub Markdown table (for notes written next to the plots)."""

    def cell(value: Any) -> str:
        if isinstance(value, float | np.floating):
            return "n/a" if not np.isfinite(value) else floatfmt.format(value)
        if isinstance(value, pd.Timestamp):
            return f"{value:%Y-%m-%d %H:%M}"
        return str(value).replace("|", "\\|")

    head = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for idx, *values in frame.itertuples(name=None):  # keeps each column's type
        lines.append("| " + " | ".join([cell(idx), *(cell(v) for v in values)]) + " |")
    return "\n".join(lines)


def write_eda_docs(
    notes: str,
    figures: Mapping[str, Figure],
    symbol: str,
    timeframe: str,
    folder: str | Path | None = None,
) -> Path:
    """The repository's documented EDA (``docs/eda/``): notebook 01's notes with its plots,
    written only when the notebook is asked to (``write_docs=True``), since these files are
    tracked and a routine run must not rewrite them. Returns the notes file."""
    from cryptoai.data.symbols import path_safe

    docs = Path(folder) if folder is not None else repo_root(via_package=True) / "docs" / "eda"
    docs.mkdir(parents=True, exist_ok=True)
    stem = f"{path_safe(symbol)}_{timeframe}"
    links = []
    for name, figure in figures.items():
        figure.savefig(docs / f"{stem}_{name}.png", dpi=100, bbox_inches="tight")
        links.append(f"![{name}]({stem}_{name}.png)")
    path = docs / f"{stem}_exploration.md"
    path.write_text(notes + "\n\n## Plots\n\n" + "\n\n".join(links) + "\n")
    log.info("EDA notes and %d plot(s) written to %s", len(figures), docs)
    return path


def quantile_levels(
    values: pd.Series, quantiles: Sequence[float], include: float | None = None
) -> list[float]:
    """Sorted, distinct levels at the given quantiles of ``values`` (rounded to 4 places),
    plus ``include`` (a configured threshold) when given: a threshold grid that always holds
    the config's own value, so the grid's row for it reproduces the configured backtest."""
    levels = {round(float(v), 4) for v in values.quantile(list(quantiles))}
    if include is not None:
        levels.add(float(include))
    return sorted(levels)
