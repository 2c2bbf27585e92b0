"""A backtest's files on disk: metrics, trades, equity, plots and a Markdown report.

The report always shows buy-and-hold next to the strategy and states the costs used, so a
result is never read without its benchmark and its assumptions.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cryptoai.backtest import plots
from cryptoai.backtest.metrics import METRIC_NAMES, compute_metrics, periods_per_year, to_jsonable
from cryptoai.backtest.result import TRADE_COLUMNS

if TYPE_CHECKING:
    from cryptoai.backtest.result import BacktestResult

log = logging.getLogger(__name__)

ASSUMPTIONS_DOC = Path("docs/backtest_assumptions.md")

# How each metric is shown in the Markdown table: label and format.
_PCT, _NUM, _INT, _CASH = "{:.2%}", "{:.2f}", "{:.0f}", "{:,.2f}"
_DISPLAY: dict[str, tuple[str, str]] = {
    "total_return": ("Total return", _PCT),
    "cagr": ("CAGR", _PCT),
    "volatility": ("Volatility (ann.)", _PCT),
    "sharpe": ("Sharpe", _NUM),
    "sortino": ("Sortino", _NUM),
    "max_drawdown": ("Max drawdown", _PCT),
    "max_drawdown_bars": ("Max drawdown duration (bars)", _INT),
    "max_drawdown_days": ("Max drawdown duration (days)", "{:.1f}"),
    "calmar": ("Calmar (MAR)", _NUM),
    "n_trades": ("Trades", _INT),
    "win_rate": ("Win rate", _PCT),
    "profit_factor": ("Profit factor", _NUM),
    "expectancy": ("Expectancy (cash per trade)", _CASH),
    "avg_trade_return": ("Average trade return", _PCT),
    "exposure": ("Exposure (share of bars in market)", _PCT),
    "turnover": ("Turnover (traded notional / mean equity)", _NUM),
    "fees_paid": ("Fees paid", _CASH),
    "funding_paid": ("Funding paid", _CASH),
    "final_equity": ("Final equity", _CASH),
    "n_bars": ("Bars", _INT),
    "periods_per_year": ("Bars per year", "{:.1f}"),
}


def write_report(
    result: BacktestResult,
    benchmark: BacktestResult | None,
    data: pd.DataFrame,
    out_dir: str | Path,
    title: str = "",
) -> dict[str, Path]:
    """Write metrics.json, trades.csv, equity.csv, PNG plots and backtest_report.md.

    Returns the written paths by name (``metrics``, ``trades``, ``equity``, ``report``,
    ``equity_plot``, ``drawdown_plot``, ``monthly_plot``, ``trades_plot``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ppy = periods_per_year(result.equity.index) if len(result.equity) > 1 else 1.0
    strat = compute_metrics(result, ppy)
    bench = compute_metrics(benchmark, ppy) if benchmark is not None else None

    paths = {
        "metrics": _write_json(out / "metrics.json", {**strat, "benchmark": bench}),
        "trades": write_trades_csv(result.trades, out / "trades.csv"),
        "equity": write_equity_csv(result.equity, out / "equity.csv"),
        "equity_plot": plots.plot_equity(result, benchmark, out / "equity.png"),
        "drawdown_plot": plots.plot_drawdown(result, benchmark, out / "drawdown.png"),
        "monthly_plot": plots.plot_monthly_returns(result, out / "monthly_returns.png"),
        "trades_plot": plots.plot_trades(result, data, out / "trades.png"),
    }
    text = render_markdown(result, benchmark, strat, bench, paths, out, title)
    paths["report"] = out / "backtest_report.md"
    paths["report"].write_text(text, encoding="utf-8")
    log.info("backtest report written to %s", paths["report"])
    return paths


def write_trades_csv(trades: pd.DataFrame, path: Path) -> Path:
    """One row per round trip, in the documented column order (UTC times)."""
    frame = trades.reindex(columns=list(TRADE_COLUMNS))
    frame.to_csv(path, index=False)
    return path


def write_equity_csv(equity: pd.Series, path: Path) -> Path:
    """``timestamp,equity`` at full float precision, so the file round-trips exactly."""
    frame = pd.DataFrame({"timestamp": equity.index, "equity": equity.to_numpy()})
    frame.to_csv(path, index=False, float_format="%.17g")
    return path


def read_equity_csv(path: str | Path) -> pd.Series:
    """Inverse of ``write_equity_csv``: a float64 Series on a UTC DatetimeIndex."""
    frame = pd.read_csv(path, float_precision="round_trip")
    index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"], utc=True), name="timestamp")
    return pd.Series(frame["equity"].to_numpy(dtype="float64"), index=index, name="equity")


def render_markdown(
    result: BacktestResult,
    benchmark: BacktestResult | None,
    strat: dict[str, float],
    bench: dict[str, float] | None,
    paths: dict[str, Path],
    out: Path,
    title: str = "",
) -> str:
    """The Markdown report: period, settings and costs, metrics side by side, plots."""
    eq = result.equity
    name = result.name or "strategy"
    lines = [f"# {title or 'Backtest report: ' + name}", ""]
    lines += [
        f"Period: {eq.index[0]:%Y-%m-%d %H:%M} to {eq.index[-1]:%Y-%m-%d %H:%M} UTC,"
        f" {len(eq)} bars. Initial cash: {result.initial_cash:,.2f}.",
        "",
        "## Settings and costs",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {_setting(v)} |" for k, v in sorted(result.settings.items())]
    lines += ["", "## Metrics", "", f"| metric | {name} | buy and hold |", "|---|---:|---:|"]
    for key in METRIC_NAMES:
        label, fmt = _DISPLAY[key]
        other = _fmt(bench[key], fmt) if bench is not None else "n/a"
        lines.append(f"| {label} | {_fmt(strat[key], fmt)} | {other} |")
    lines += ["", "## Plots", ""]
    for key, caption in (
        ("equity_plot", "Equity vs buy and hold"),
        ("drawdown_plot", "Drawdown"),
        ("monthly_plot", "Monthly returns"),
        ("trades_plot", "Trades on price"),
    ):
        lines += [f"![{caption}]({paths[key].name})", ""]
    lines += [
        "## Assumptions",
        "",
        "Signals computed at a bar's close are filled at the next bar's open, with the fees and"
        f" slippage listed above. See [{ASSUMPTIONS_DOC.as_posix()}]({_assumptions_link(out)})"
        " for everything the backtest assumes.",
        "",
        "Files: `metrics.json`, `trades.csv`, `equity.csv`.",
        "",
    ]
    return "\n".join(lines)


def _write_json(path: Path, payload: dict[str, Any]) -> Path:
    path.write_text(json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n")
    return path


def _fmt(value: float, fmt: str) -> str:
    if value is None or value != value:  # NaN
        return "n/a"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return fmt.format(value)


def _setting(value: Any) -> str:
    text = json.dumps(to_jsonable(value), default=str) if not isinstance(value, str) else value
    return text.replace("|", "\\|")


def _assumptions_link(out: Path) -> str:
    """Relative link to the assumptions page when the report lies inside the repository
    (e.g. ``experiments/...``); otherwise the page's path within the repository."""
    root = Path(__file__).resolve().parents[3]
    folder = out.resolve()
    if (root / ASSUMPTIONS_DOC).is_file() and folder.is_relative_to(root):
        return Path(os.path.relpath(root / ASSUMPTIONS_DOC, folder)).as_posix()
    return ASSUMPTIONS_DOC.as_posix()
