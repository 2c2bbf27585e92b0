"""A backtest's files on disk: metrics, trades, equity, plots and a Markdown report.

The report always shows buy-and-hold next to the strategy, the same decisions gross of
costs (so a reader can tell whether the costs or the signal lost the money), the cost
model and the costs used, and what the period is (e.g. the out-of-sample test folds), so
a result is never read without its benchmark and its assumptions.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cryptoai.backtest import plots
from cryptoai.backtest.metrics import METRIC_NAMES, annualization, compute_metrics, to_jsonable
from cryptoai.backtest.result import TRADE_COLUMNS

if TYPE_CHECKING:
    from cryptoai.backtest.result import BacktestResult

log = logging.getLogger(__name__)

ASSUMPTIONS_DOC = Path("docs/backtest_assumptions.md")

# How each metric is shown in the Markdown table: label and format.
_PCT, _NUM, _INT, _CASH = "{:.2%}", "{:.2f}", "{:.0f}", "{:,.2f}"
#: Metrics that count things: written to metrics.json as integers.
COUNTS = ("n_trades", "n_bars", "max_drawdown_bars")
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
    "span_days": ("Calendar span (days)", "{:.1f}"),
    "periods_per_year": ("Bars per year", "{:.1f}"),
}


def write_report(
    result: BacktestResult,
    benchmark: BacktestResult | None,
    data: pd.DataFrame,
    out_dir: str | Path,
    title: str = "",
    *,
    period_label: str = "",
    note: str = "",
    gross: BacktestResult | None = None,
    periods_per_year: float | None = None,
) -> dict[str, Path]:
    """Write metrics.json, trades.csv, equity.csv, PNG plots and backtest_report.md.

    ``period_label`` says what the period is (e.g. "out-of-sample test folds 1-5") and
    ``note`` adds a paragraph. ``gross``: the same decisions without costs; by default it
    is re-run from ``result.targets`` when the result has them. ``periods_per_year``
    overrides the bars per year (default: ``metrics.annualization``, stated in the report).
    Figures already in ``out_dir`` (e.g. a notebook's ``signal.png``) are linked too.

    Returns the written paths by name (``metrics``, ``trades``, ``equity``, ``report``,
    ``equity_plot``, ``drawdown_plot``, ``monthly_plot``, ``trades_plot``).
    """
    from cryptoai.backtest.runner import gross_of_costs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ann = annualization(result.equity.index, periods_per_year) if len(result.equity) > 1 else None
    ppy = ann["periods_per_year"] if ann else (periods_per_year or 1.0)
    strat = compute_metrics(result, ppy)
    bench = compute_metrics(benchmark, ppy) if benchmark is not None else None
    if gross is None:
        gross = gross_of_costs(data, result)
    gross_m = compute_metrics(gross, ppy) if gross is not None else None
    ours = {"equity.png", "drawdown.png", "monthly_returns.png", "trades.png"}
    extra = sorted(p.name for p in out.glob("*.png") if p.name not in ours)

    payload = {
        **strat,
        "benchmark": bench,
        "gross_of_costs": gross_m,
        "period_label": period_label,
        "annualization": _annualization_record(ann, ppy),
        "cost_model": result.settings.get("cost_model", "fixed"),
        "execution_settings": result.settings,
    }
    paths = {
        "metrics": _write_json(out / "metrics.json", payload),
        "trades": write_trades_csv(result.trades, out / "trades.csv"),
        "equity": write_equity_csv(result.equity, out / "equity.csv"),
        "equity_plot": plots.plot_equity(result, benchmark, out / "equity.png", gross=gross),
        "drawdown_plot": plots.plot_drawdown(result, benchmark, out / "drawdown.png"),
        "monthly_plot": plots.plot_monthly_returns(result, out / "monthly_returns.png"),
        "trades_plot": plots.plot_trades(result, data, out / "trades.png"),
    }
    paths.update({f"figure:{name}": out / name for name in extra})
    context = {"period_label": period_label, "note": note, "ann": ann, "gross": gross_m}
    text = render_markdown(result, benchmark, strat, bench, paths, out, title, context)
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
    context: dict[str, Any] | None = None,
) -> str:
    """The Markdown report: period, settings and costs, metrics side by side, plots."""
    ctx = context or {}
    eq = result.equity
    name = result.name or "strategy"
    label = ctx.get("period_label") or ""
    lines = [f"# {title or 'Backtest report: ' + name}", ""]
    lines += [
        f"Period{f' ({label})' if label else ''}: {eq.index[0]:%Y-%m-%d %H:%M} to"
        f" {eq.index[-1]:%Y-%m-%d %H:%M} UTC, {len(eq)} bars. Initial cash:"
        f" {result.initial_cash:,.2f}.",
        "",
    ]
    if ctx.get("note"):
        lines += [str(ctx["note"]), ""]
    ann = ctx.get("ann")
    if ann is not None:
        lines += [
            f"Annualization: {ann['periods_per_year']:.1f} bars per year ({ann['source']});"
            f" CAGR over the calendar span of {ann['span_days']:.1f} days.",
            "",
        ]
        if not ann["ok"]:
            lines += [f"**Short sample**: {ann['note']} (docs/metrics.md).", ""]
    lines += ["## Settings and costs", "", *_costs_text(result.settings), ""]
    lines += ["| setting | value |", "|---|---|"]
    lines += [f"| {k} | {_setting(v)} |" for k, v in sorted(result.settings.items())]
    gross = ctx.get("gross")
    head = f"| metric | {name} | buy and hold |"
    rule = "|---|---:|---:|"
    if gross is not None:
        head, rule = head + f" {name} gross of costs |", rule + "---:|"
    lines += ["", "## Metrics", "", head, rule]
    for key in METRIC_NAMES:
        label_, fmt = _DISPLAY[key]
        other = _fmt(bench[key], fmt) if bench is not None else "n/a"
        row = f"| {label_} | {_fmt(strat[key], fmt)} | {other} |"
        lines.append(row + (f" {_fmt(gross[key], fmt)} |" if gross is not None else ""))
    if gross is not None:
        lines += [
            "",
            f"Gross of costs: the same decisions without fees, slippage, spread, impact or"
            f" funding return {_fmt(gross['total_return'], _PCT)} against"
            f" {_fmt(strat['total_return'], _PCT)} net: the costs took"
            f" {_fmt(gross['total_return'] - strat['total_return'], _PCT)}.",
        ]
    lines += ["", "## Plots", ""]
    for key, caption in (
        ("equity_plot", "Equity vs buy and hold (and gross of costs)"),
        ("drawdown_plot", "Drawdown"),
        ("monthly_plot", "Monthly returns"),
        ("trades_plot", "Trades on price"),
    ):
        lines += [f"![{caption}]({paths[key].name})", ""]
    for key, path in paths.items():
        if key.startswith("figure:"):
            caption = "Signal" if path.stem == "signal" else path.stem.replace("_", " ")
            lines += [f"![{caption}]({path.name})", ""]
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


def _costs_text(settings: dict[str, Any]) -> list[str]:
    """The cost model that ran, in words (what each fee applies to)."""
    model = settings.get("cost_model", "fixed")
    fee, maker = settings.get("fee_bps"), settings.get("maker_fee_bps")
    slip = settings.get("slippage_bps")
    lines = [
        f"Cost model: **{model}**. Taker fee {fee} bps per side on market orders, stops,"
        f" stop-losses, time stops, liquidations and the final close; maker fee {maker} bps"
        " on fills that rest in the book at their own price (limit orders and take-profits),"
        " which pay no slippage."
    ]
    if model == "maker_taker":
        lines.append(
            "A limit order or take-profit that the open gaps through crosses the book: it"
            " pays the taker fee and slippage."
        )
    elif model == "tiered":
        lines.append(
            f"Fees by tier of the notional traded over the 30 completed days before each"
            f" fill (floor, taker bps, maker bps): {settings.get('fee_tiers')}."
        )
    if model == "spread":
        const = settings.get("spread_bps")
        source = f"a constant {const} bps spread" if const is not None else "the spread column"
        lines.append(f"Slippage: half of {source} per side (replaces slippage_bps).")
    else:
        lines.append(f"Slippage: {slip} bps per side on taker fills.")
    if model == "impact":
        lines.append(
            f"Market impact on taker fills: {settings.get('impact_k')} bps x sqrt(order"
            " notional / the last completed bar's quote volume), at most 10%."
        )
    return [" ".join(lines)]


def _annualization_record(ann: dict[str, Any] | None, ppy: float) -> dict[str, Any]:
    if ann is None:
        return {"periods_per_year": ppy, "source": "given or assumed (one bar)", "ok": False}
    return dict(ann)


def _write_json(path: Path, payload: dict[str, Any]) -> Path:
    payload = _counts_as_ints(payload)
    path.write_text(json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n")
    return path


def _counts_as_ints(payload: dict[str, Any]) -> dict[str, Any]:
    out = dict(payload)
    for key, value in out.items():
        if key in COUNTS and isinstance(value, int | float) and value == value:
            out[key] = int(value)
        elif isinstance(value, dict) and key != "execution_settings":
            out[key] = _counts_as_ints(value)
    return out


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
