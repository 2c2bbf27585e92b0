"""Run a strategy with either engine, and its buy-and-hold benchmark with the same costs."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import pandas as pd

from cryptoai.backtest._market import check_data
from cryptoai.backtest.event import run_event
from cryptoai.backtest.result import BacktestResult
from cryptoai.backtest.settings import ExecutionSettings, make_settings
from cryptoai.backtest.vectorized import run_vectorized
from cryptoai.errors import BadInputError
from cryptoai.strategies.base import BaseStrategy
from cryptoai.strategies.registry import make_strategy

ENGINES = ("vectorized", "event")
#: What "gross of costs" turns off: fees, slippage, spread, impact and funding.
NO_COSTS = {
    "fee_bps": 0.0,
    "maker_fee_bps": 0.0,
    "slippage_bps": 0.0,
    "vol_slippage": 0.0,
    "funding_rate": 0.0,
    "cost_model": "fixed",
    "fee_tiers": None,
    "spread_bps": None,
}


def run_strategy(
    data: pd.DataFrame,
    strategy: str | type[BaseStrategy] | BaseStrategy,
    params: dict[str, Any] | None = None,
    settings: ExecutionSettings | dict | None = None,
    *,
    engine: str | None = None,
    funding: pd.Series | None = None,
    validate: bool = True,
) -> BacktestResult:
    """Backtest one strategy; ``engine=None`` uses the vectorized engine when it can."""
    strat = make_strategy(strategy, params)
    cfg = make_settings(settings)
    if engine is None:
        engine = "vectorized" if strat.has_signals() else "event"
    if engine not in ENGINES:
        raise BadInputError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if validate:
        check_data(data)
    if engine == "vectorized":
        if not strat.has_signals():
            raise BadInputError(
                f"strategy {strat.name} has no vectorized signals: use --engine event"
            )
        return run_vectorized(
            data, strat.signals(data), cfg, funding=funding, name=strat.name, validate=False
        )
    return run_event(data, strat, cfg, funding=funding, name=strat.name, validate=False)


def run_backtest(
    data: pd.DataFrame,
    strategy: str | type[BaseStrategy] | BaseStrategy,
    params: dict[str, Any] | None = None,
    settings: ExecutionSettings | dict | None = None,
    *,
    engine: str | None = None,
    funding: pd.Series | None = None,
) -> tuple[BacktestResult, BacktestResult]:
    """The strategy and buy-and-hold, through the same engine with the same costs.

    The benchmark drops stops and take-profits (it is the plain market) but keeps fees,
    slippage, fill timing, sizing, leverage and funding.
    """
    check_data(data)
    result = run_strategy(
        data, strategy, params, settings, engine=engine, funding=funding, validate=False
    )
    cfg = make_settings(settings).with_(stop_loss=None, take_profit=None, trailing_stop=None)
    bench = run_strategy(
        data,
        "buy_and_hold",
        None,
        cfg,
        engine=result.settings["engine"],
        funding=funding,
        validate=False,
    )
    return result, bench


def settings_of(result: BacktestResult) -> ExecutionSettings:
    """The ExecutionSettings a result ran with (its settings dict minus engine notes)."""
    known = {f.name for f in fields(ExecutionSettings)}
    return make_settings({k: v for k, v in result.settings.items() if k in known})


def gross_of_costs(
    data: pd.DataFrame,
    result: BacktestResult,
    strategy: str | type[BaseStrategy] | BaseStrategy | None = None,
    params: dict[str, Any] | None = None,
) -> BacktestResult | None:
    """The same decisions without fees, slippage, spread, impact or funding (``NO_COSTS``),
    so a report can tell whether the costs or the signal lost the money.

    Re-runs ``result.targets`` (vectorized market-order runs) or, when given, the
    ``strategy`` through the engine the result used; None when neither is available.
    """
    cfg = settings_of(result).with_(**NO_COSTS)
    name = f"{result.name or 'strategy'} (gross)"
    if result.targets is not None:
        return run_vectorized(data, result.targets, cfg, name=name, validate=False)
    if strategy is None:
        return None
    engine = result.settings.get("engine")
    gross = run_strategy(data, strategy, params, cfg, engine=engine, validate=False)
    return replace(gross, name=name)
