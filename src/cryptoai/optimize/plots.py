"""Plots of a sweep: objective heatmaps, history, parameter importance, equity vs buy-and-hold.

Each function takes plain data and returns a matplotlib figure (the Agg backend: no display
needed); `write_plots` saves them as PNG files into the report folder.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptoai.optimize.trials import COMPLETE, Trial


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def completed_frame(trials: Sequence[Trial], names: Sequence[str]) -> pd.DataFrame:
    rows = [
        {**{n: t.params.get(n) for n in names}, "value": t.value, "number": t.number}
        for t in trials
        if t.state == COMPLETE and t.value is not None
    ]
    return pd.DataFrame(rows, columns=[*names, "value", "number"])


def heatmaps(trials: Sequence[Trial], names: Sequence[str], metric: str):
    """Median objective over every pair of parameters (one panel per pair); one parameter:
    the objective against it."""
    plt = _plt()
    df = completed_frame(trials, names)
    pairs = list(itertools.combinations(names, 2))
    if not pairs:
        fig, ax = plt.subplots(figsize=(6, 4))
        if len(df):
            s = df.groupby(names[0])["value"].median()
            ax.plot([str(v) for v in s.index], s.to_numpy(), marker="o")
        ax.set_xlabel(names[0])
        ax.set_ylabel(metric)
        ax.set_title(f"median {metric} by {names[0]}")
        fig.tight_layout()
        return fig
    cols = min(3, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    for ax, (a, b) in zip(axes.flat, pairs, strict=False):
        if len(df):
            table = df.pivot_table(index=b, columns=a, values="value", aggfunc="median")
            table = _binned(df, a, b) if table.size > 400 else table
            im = ax.imshow(
                table.to_numpy(dtype=float), origin="lower", aspect="auto", cmap="viridis"
            )
            ax.set_xticks(
                range(len(table.columns)), [_short(v) for v in table.columns], rotation=90
            )
            ax.set_yticks(range(len(table.index)), [_short(v) for v in table.index])
            fig.colorbar(im, ax=ax, label=metric)
        ax.set_xlabel(a)
        ax.set_ylabel(b)
    for ax in list(axes.flat)[len(pairs) :]:
        ax.axis("off")
    fig.suptitle(f"median {metric} over each pair of parameters")
    fig.tight_layout()
    return fig


def _binned(df: pd.DataFrame, a: str, b: str, bins: int = 12) -> pd.DataFrame:
    """Continuous parameters (random / optuna): median objective in a bins x bins grid."""
    d = df.copy()
    for col in (a, b):
        if pd.api.types.is_numeric_dtype(d[col]) and d[col].nunique() > bins:
            d[col] = pd.cut(d[col], bins).apply(lambda iv: round(float(iv.mid), 4))
    return d.pivot_table(index=b, columns=a, values="value", aggfunc="median", observed=False)


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def history(trials: Sequence[Trial], metric: str, maximize: bool):
    """Each trial's objective in the order they ran, and the best so far."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    done = [t for t in trials if t.state == COMPLETE and t.value is not None]
    if done:
        x = np.array([t.number for t in done])
        y = np.array([t.value for t in done])
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        best = np.maximum.accumulate(y) if maximize else np.minimum.accumulate(y)
        ax.scatter(x, y, s=10, alpha=0.6, label="trial")
        ax.step(x, best, where="post", color="C3", label="best so far")
        ax.legend()
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.set_title("optimization history")
    fig.tight_layout()
    return fig


def variance_importance(trials: Sequence[Trial], names: Sequence[str]) -> dict[str, float]:
    """Share of the objective's variance each parameter explains on its own (the variance of
    the objective's mean per value over its total variance; continuous values in deciles),
    normalized to sum to 1."""
    df = completed_frame(trials, names)
    if len(df) < 2 or df["value"].var() == 0:
        return {n: 0.0 for n in names}
    total = df["value"].var(ddof=0)
    raw = {}
    for n in names:
        col = df[n]
        if pd.api.types.is_numeric_dtype(col) and col.nunique() > 10:
            col = pd.qcut(col, 10, duplicates="drop")
        means = df["value"].groupby(col, observed=True).transform("mean")
        raw[n] = float(means.var(ddof=0) / total)
    s = sum(raw.values())
    return {n: (v / s if s > 0 else 0.0) for n, v in raw.items()}


def importance(values: dict[str, float], method: str):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.5 * len(values) + 1)))
    items = sorted(values.items(), key=lambda kv: kv[1])
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set_xlabel("importance")
    ax.set_title(f"parameter importance ({method})")
    fig.tight_layout()
    return fig


def equity(result, bench, title: str):
    """The chosen parameters' equity next to buy-and-hold with the same costs."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(result.equity.index, result.equity.to_numpy(), label=result.name or "strategy")
    if bench is not None:
        ax.plot(bench.equity.index, bench.equity.to_numpy(), label="buy and hold", alpha=0.7)
    ax.set_ylabel("equity")
    ax.set_title(title)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def save(fig, path: Path) -> Path:
    plt = _plt()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path
