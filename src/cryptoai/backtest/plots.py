"""Backtest figures as PNG files (matplotlib, headless Agg backend).

Each function draws one figure, saves it and returns the path, so reports and notebooks
can pick the ones they need. Long series are thinned before drawing: a 1M-bar price line
does not need more points than the image has pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cryptoai.backtest.metrics import drawdown, monthly_returns

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cryptoai.backtest.result import BacktestResult

MAX_POINTS = 4000  # per line; about twice the pixel width of a saved figure
DPI = 110
TRADE_MARKERS_MAX = 150  # more round trips: thin tick marks at entries, no exit markers
STRATEGY_COLOR, BENCHMARK_COLOR, GROSS_COLOR = "tab:blue", "tab:orange", "tab:gray"


def _figure(height: float = 4.0) -> Figure:
    # Figure() without pyplot: no global state, no GUI backend, safe in threads and servers.
    from matplotlib.figure import Figure

    return Figure(figsize=(10, height), dpi=DPI, layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _thin(series: pd.Series, max_points: int = MAX_POINTS) -> pd.Series:
    """Every k-th point plus the last, so the curve keeps its shape and its end value."""
    if len(series) <= max_points:
        return series
    step = int(np.ceil(len(series) / max_points))
    keep = np.zeros(len(series), dtype=bool)
    keep[::step] = True
    keep[-1] = True
    return series[keep]


def plot_equity(
    result: BacktestResult,
    benchmark: BacktestResult | None,
    path: Path,
    gross: BacktestResult | None = None,
) -> Path:
    """Strategy equity against buy-and-hold on a log scale (equal % moves look equal), and
    the same decisions gross of costs (dashed) when given."""
    fig = _figure()
    ax = fig.add_subplot()
    strat = _thin(result.equity)
    label = result.name or "strategy"
    ax.plot(strat.index, strat.to_numpy(), label=label, lw=1.2, color=STRATEGY_COLOR)
    if gross is not None:
        g = _thin(gross.equity)
        ax.plot(g.index, g.to_numpy(), label=f"{label} gross of costs", lw=0.9, ls="--",
                color=GROSS_COLOR)  # fmt: skip
    if benchmark is not None:
        bench = _thin(benchmark.equity)
        ax.plot(bench.index, bench.to_numpy(), label=benchmark.name or "buy and hold", lw=1.0,
                color=BENCHMARK_COLOR)  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("equity (log scale)")
    ax.set_title("Equity vs benchmark")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best")
    return _save(fig, path)


def plot_drawdown(result: BacktestResult, benchmark: BacktestResult | None, path: Path) -> Path:
    """Distance below the running peak, strategy and benchmark, in percent."""
    fig = _figure(3.0)
    ax = fig.add_subplot()
    dd = _thin(drawdown(result.equity, result.initial_cash)) * 100
    ax.fill_between(dd.index, dd.to_numpy(), 0.0, alpha=0.4, color=STRATEGY_COLOR,
                    label=result.name or "strategy")  # fmt: skip
    if benchmark is not None:
        bdd = _thin(drawdown(benchmark.equity, benchmark.initial_cash)) * 100
        ax.plot(bdd.index, bdd.to_numpy(), lw=0.9, color=BENCHMARK_COLOR,
                label=benchmark.name or "buy and hold")  # fmt: skip
    ax.set_ylabel("drawdown (%)")
    ax.set_title("Drawdown")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    return _save(fig, path)


def plot_monthly_returns(result: BacktestResult, path: Path) -> Path:
    """Calendar heatmap of monthly returns (red losses, green gains, values in percent)."""
    table = monthly_returns(result.equity, result.initial_cash) * 100
    values = table.to_numpy(dtype="float64")
    fig = _figure(max(2.0, 0.45 * len(table) + 1.2))
    ax = fig.add_subplot()
    finite = values[np.isfinite(values)]
    limit = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
    image = ax.imshow(values, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(
        range(12),
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    )
    ax.set_yticks(range(len(table)), [str(y) for y in table.index])
    if values.size <= 12 * 40:  # annotate while the cells are big enough to read
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="return (%)")
    ax.set_title("Monthly returns (%)")
    return _save(fig, path)


def plot_trades(result: BacktestResult, data: pd.DataFrame, path: Path) -> Path:
    """Close price with entries (triangles) and exits (crosses); green wins, red losses."""
    fig = _figure()
    ax = fig.add_subplot()
    close = _thin(data["close"])
    ax.plot(close.index, close.to_numpy(), color="0.35", lw=0.8, label="close")
    trades = result.trades
    dense = len(trades) > TRADE_MARKERS_MAX
    if dense:  # hundreds of markers hide the price: thin ticks at the entries only
        win = trades["pnl"].to_numpy() > 0
        for mask, color in ((win, "tab:green"), (~win, "tab:red")):
            sel = trades[mask]
            ax.scatter(sel["entry_time"], sel["entry_price"], marker="|", s=10, lw=0.6,
                       color=color, alpha=0.6, zorder=3)  # fmt: skip
    elif len(trades):
        win = trades["pnl"].to_numpy() > 0
        long = (trades["side"] == "long").to_numpy()
        for mask, color in ((win, "tab:green"), (~win, "tab:red")):
            for side_mask, marker in ((long, "^"), (~long, "v")):
                sel = trades[mask & side_mask]
                ax.scatter(
                    sel["entry_time"],
                    sel["entry_price"],
                    marker=marker,
                    s=14,
                    color=color,
                    zorder=3,
                )
            sel = trades[mask]
            ax.scatter(sel["exit_time"], sel["exit_price"], marker="x", s=12, color=color, zorder=3)
    ax.set_ylabel("price")
    if dense:
        ax.set_title(f"Trades on price ({len(trades)} round trips: entries as ticks, green wins)")
    else:
        ax.set_title(f"Trades on price ({len(trades)} round trips; ^ long, v short, x exit)")
    ax.grid(True, alpha=0.3)
    return _save(fig, path)
