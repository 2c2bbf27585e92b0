"""``cryptoai backtest``: run a strategy on OHLCV data with costs, next to buy-and-hold."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from cryptoai.backtest.settings import ExecutionSettings as _DEFAULTS  # the one source of defaults

log = logging.getLogger(__name__)

SUMMARY_METRICS = (
    ("total_return", "total return", "{:+.2%}"),
    ("cagr", "CAGR", "{:+.2%}"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("max_drawdown", "max drawdown", "{:.2%}"),
    ("n_trades", "trades", "{:.0f}"),
    ("fees_paid", "fees paid", "{:,.2f}"),
    ("final_equity", "final equity", "{:,.2f}"),
)


def backtest(
    data: str = typer.Option(
        ..., help="CSV/Parquet OHLCV file, or a store reference exchange/symbol/timeframe"
    ),
    strategy: str = typer.Option(
        None,
        help="strategy name (see `cryptoai strategies`); default from --config, else ema_cross",
    ),
    param: list[str] = typer.Option([], "--param", "-p", help="strategy parameter k=v; repeatable"),
    out: Path = typer.Option(
        ..., help="output folder for metrics, trades, equity, plots and report"
    ),
    config: Path = typer.Option(
        None, help="YAML with strategy, params, engine and execution settings"
    ),
    start: str = typer.Option(None, help="first bar, inclusive (UTC)"),
    end: str = typer.Option(None, help="end, exclusive (UTC)"),
    fee_bps: float = typer.Option(
        None, help=f"taker fee per side in bps (default {_DEFAULTS.fee_bps:g})"
    ),
    maker_fee_bps: float = typer.Option(
        None,
        help=f"maker fee (limit / take-profit fills) in bps (default {_DEFAULTS.maker_fee_bps:g})",
    ),
    slippage_bps: float = typer.Option(
        None, help=f"slippage per fill in bps (default {_DEFAULTS.slippage_bps:g})"
    ),
    vol_slippage: float = typer.Option(
        None, help=f"extra slippage per unit of bar volatility (default {_DEFAULTS.vol_slippage:g})"
    ),
    fill_at: str = typer.Option(
        None, help="open: next bar's open (default); close: the decision bar's close"
    ),
    initial_cash: float = typer.Option(
        None, help=f"starting equity (default {_DEFAULTS.initial_cash:g})"
    ),
    size: str = typer.Option(None, help="all_in | fixed_fraction | fixed_notional | vol_target"),
    size_value: float = typer.Option(None, help="fraction, notional or annual volatility target"),
    leverage: float = typer.Option(
        None, help=f"notional / margin (default {_DEFAULTS.leverage:g})"
    ),
    maintenance_margin: float = typer.Option(
        None, help="liquidation threshold, fraction of notional"
    ),
    funding_rate: float = typer.Option(
        None, help="perpetual funding rate per 8h (longs pay if > 0)"
    ),
    stop_loss: float = typer.Option(None, help="stop-loss, fraction of the entry price"),
    take_profit: float = typer.Option(None, help="take-profit, fraction of the entry price"),
    trailing_stop: float = typer.Option(None, help="trailing stop, fraction of the best price"),
    predictions: Path = typer.Option(
        None, help="CSV/Parquet of model predictions for model_signal"
    ),
    engine: str = typer.Option(
        None, help="vectorized (default when the strategy has signals) | event"
    ),
    store: Path = typer.Option(Path("data/raw"), help="store root for exchange/symbol/timeframe"),
    title: str = typer.Option("", help="report title"),
    check_lookahead: bool = typer.Option(
        None,
        "--check-lookahead/--no-check-lookahead",
        help="re-run the strategy with the bars after sampled decision points changed and"
        " refuse it if an earlier decision moves (default: on for plugin strategies)",
    ),
) -> None:
    """Backtest a strategy with costs on; buy-and-hold runs alongside with the same costs."""
    from cryptoai.backtest.report import write_report
    from cryptoai.backtest.runner import run_backtest
    from cryptoai.backtest.settings import make_settings
    from cryptoai.data.loading import load_frame

    cfg = _read_config(config) if config is not None else {}
    name = strategy or cfg.get("strategy") or "ema_cross"
    params = {**cfg.get("params", {}), **parse_params(param)}
    if predictions is not None:
        params["predictions"] = read_predictions(predictions)
    overrides = {
        key: value
        for key, value in {
            "fee_bps": fee_bps,
            "maker_fee_bps": maker_fee_bps,
            "slippage_bps": slippage_bps,
            "vol_slippage": vol_slippage,
            "fill_at": fill_at,
            "initial_cash": initial_cash,
            "size": size,
            "size_value": size_value,
            "leverage": leverage,
            "maintenance_margin": maintenance_margin,
            "funding_rate": funding_rate,
            "stop_loss": stop_loss,
            "take_profit": take_profit,
            "trailing_stop": trailing_stop,
        }.items()
        if value is not None
    }
    settings = make_settings(cfg.get("execution", {}), **overrides)
    frame = load_frame(data, start, end, store_root=store)
    note = lookahead_note(name, frame, params, check_lookahead)
    result, bench = run_backtest(frame, name, params, settings, engine=engine or cfg.get("engine"))
    from cryptoai.backtest.runner import gross_of_costs

    gross = gross_of_costs(frame, result, name, params)  # event runs too, not only targets
    paths = write_report(
        result,
        bench,
        frame,
        out,
        title=title or f"{result.name} on {data}",
        note=note,
        gross=gross,
        period_label="the whole range given: in sample for any parameter chosen on it",
    )
    typer.echo(summary(result, bench))
    typer.echo(f"report: {paths['report']}")


def lookahead_note(name: str, frame, params: dict, requested: bool | None) -> str:
    """Run the lookahead check when asked, or by default for a strategy that is not built in
    (a plugin: nobody has proven it causal); a failure stops the backtest with the first
    changed bar. Returns the report's sentence saying whether the check ran."""
    from cryptoai.strategies import check_lookahead, get_strategy

    builtin = get_strategy(name).__module__.startswith("cryptoai.")
    if requested is False or (requested is None and builtin):
        why = "turned off" if requested is False else "built-in strategy, proven in the tests"
        return f"Lookahead check: not run ({why})."
    report = check_lookahead(name, frame, params).raise_if_failed()
    return f"Lookahead check: passed ({report.n_points} sampled decision bars, {report.mode})."


def parse_params(items: list[str]) -> dict[str, str]:
    """``["fast=10", "allow_short=true"]`` -> ``{"fast": "10", "allow_short": "true"}``.

    Values stay text: the strategy reads each one as the type its default declares
    (`BaseStrategy.resolve_params`), so ``fast=true`` or ``fast=20.5`` is an error naming the
    parameter instead of a YAML guess (``true`` became 1 for a span, ``fast=`` became None).
    """
    from cryptoai.errors import BadInputError

    out: dict[str, str] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadInputError(f"--param {item!r} is not key=value: write e.g. --param fast=10")
        if not raw.strip():
            raise BadInputError(f"--param {key}= has no value: write e.g. --param {key}=10")
        out[key] = raw.strip()
    return out


def read_predictions(path: Path):
    """A predictions file: a timestamp column (or index) and a ``prediction`` column (or one column)."""
    import pandas as pd

    from cryptoai.errors import BadInputError

    if not path.is_file():
        raise BadInputError(f"predictions file {path} not found: check the path")
    try:
        frame = (
            pd.read_parquet(path)
            if path.suffix.lower() in {".parquet", ".pq"}
            else pd.read_csv(path)
        )
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file for the user
        raise BadInputError(
            f"cannot read predictions file {path}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(frame.index, pd.DatetimeIndex):
        time_col = next((c for c in ("timestamp", "time", "date") if c in frame.columns), None)
        if time_col is None:
            raise BadInputError(
                f"{path}: no timestamp column: add one named timestamp (UTC bar open times)"
            )
        frame = frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame.pop(time_col), utc=True)))
    elif frame.index.tz is None:
        frame.index = frame.index.tz_localize("UTC")
    if "prediction" in frame.columns:
        column = "prediction"
    elif frame.shape[1] == 1:
        column = frame.columns[0]
    else:
        raise BadInputError(
            f"{path}: several columns and none named prediction: name the one to trade"
        )
    values = pd.to_numeric(frame[column], errors="coerce")
    if values.notna().sum() == 0:
        raise BadInputError(f"{path}: column {column} has no numeric predictions")
    return values.astype("float64")


def _read_config(path: Path) -> dict[str, Any]:
    from cryptoai.config import read_yaml
    from cryptoai.errors import ConfigError

    cfg = read_yaml(path)
    unknown = sorted(set(cfg) - {"strategy", "params", "engine", "execution"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown field(s) {', '.join(unknown)}: use strategy, params, engine, execution"
        )
    for key in ("params", "execution"):
        if not isinstance(cfg.get(key, {}), dict):
            raise ConfigError(f"{path}: field '{key}' must be a mapping")
    return cfg


def summary(result, bench) -> str:
    """A few headline numbers, strategy next to buy-and-hold."""
    from cryptoai.backtest.metrics import compute_metrics, periods_per_year

    ppy = periods_per_year(result.equity.index) if len(result.equity) > 1 else 1.0
    a, b = compute_metrics(result, ppy), compute_metrics(bench, ppy)
    name = result.name or "strategy"
    width = max(len(name), len("buy_and_hold"), 12)
    lines = [f"{'':<14}{name:>{width}}  {'buy_and_hold':>{width}}"]
    for key, label, fmt in SUMMARY_METRICS:
        lines.append(f"{label:<14}{_fmt(fmt, a[key]):>{width}}  {_fmt(fmt, b[key]):>{width}}")
    return "\n".join(lines)


def _fmt(fmt: str, value: float) -> str:
    import math

    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else fmt.format(value)
    )


def strategies() -> None:
    """List the registered strategies and their parameters."""
    from cryptoai.strategies import get_strategy, list_strategies

    for name in list_strategies():
        cls = get_strategy(name)
        shown = {k: v for k, v in cls.params.items()}
        params = ", ".join(f"{k}={v!r}" for k, v in shown.items()) or "(no parameters)"
        typer.echo(f"{name}: {params}")


def register(app: typer.Typer) -> None:
    app.command()(backtest)
    app.command()(strategies)
