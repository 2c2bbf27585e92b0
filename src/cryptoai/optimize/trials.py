"""One trial: a strategy with one parameter set, backtested with the sweep's settings.

A trial keeps its metrics (``compute_metrics`` keys) for the results and its per-bar returns
for the statistics (PBO needs every trial's returns on the same bars). Its state is
``complete``, or ``failed`` when it made fewer than ``min_trades`` trades or its objective is
undefined (a flat equity has no Sharpe ratio): a failed trial is counted, never ranked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError

COMPLETE, FAILED, SKIPPED = "complete", "failed", "skipped"


@dataclass
class Trial:
    """What one parameter set did. ``value`` is the objective (None unless complete);
    ``returns`` the per-bar returns (not written to results.json)."""

    number: int
    params: dict[str, Any]
    metrics: dict[str, Any]
    state: str
    value: float | None = None
    reason: str = ""
    returns: np.ndarray | None = field(default=None, repr=False)
    window: int | None = None

    def record(self) -> dict[str, Any]:
        """The trial as written to results.json."""
        out: dict[str, Any] = {"number": self.number}
        if self.window is not None:
            out["window"] = self.window
        out |= {"params": self.params, "metrics": self.metrics, "state": self.state}
        if self.value is not None:
            out["value"] = self.value
        if self.reason:
            out["reason"] = self.reason
        return out


def bar_returns(result) -> np.ndarray:
    """Per-bar simple returns of a backtest's equity, the first bar against the initial cash."""
    equity = result.equity.to_numpy(dtype="float64")
    previous = np.concatenate(([float(result.initial_cash)], equity[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(previous > 0, equity / previous - 1.0, 0.0)


@dataclass(frozen=True)
class TrialRunner:
    """Everything a trial needs besides its parameters (picklable, for worker processes)."""

    data: pd.DataFrame
    strategy: str
    fixed: Mapping[str, Any]
    settings: Any
    metric: str
    min_trades: int

    def run(self, number: int, params: Mapping[str, Any], window: int | None = None) -> Trial:
        """Backtest one parameter set; a set the strategy rejects comes back ``skipped``."""
        from cryptoai.backtest.metrics import compute_metrics
        from cryptoai.backtest.runner import run_strategy
        from cryptoai.strategies.registry import get_strategy

        params = dict(params)
        cls = get_strategy(self.strategy)
        try:
            strat = cls(**{**self.fixed, **params})
        except BadInputError as exc:
            return Trial(number, params, {}, SKIPPED, reason=str(exc), window=window)
        result = run_strategy(self.data, strat, settings=self.settings, validate=False)
        metrics = compute_metrics(result)
        return judge(
            number, params, metrics, bar_returns(result), self.metric, self.min_trades, window
        )


def judge(
    number: int,
    params: dict[str, Any],
    metrics: dict[str, Any],
    returns: np.ndarray | None,
    metric: str,
    min_trades: int,
    window: int | None = None,
) -> Trial:
    """A trial's state from its metrics: too few trades or an undefined objective fail it."""
    value = metrics.get(metric)
    n_trades = int(metrics.get("n_trades", 0))
    if n_trades < min_trades:
        state, reason = FAILED, f"{n_trades} trades < min_trades {min_trades}"
    elif value is None or not math.isfinite(float(value)):
        state, reason = FAILED, f"{metric} is undefined ({value})"
    else:
        state, reason = COMPLETE, ""
    return Trial(
        number,
        params,
        metrics,
        state,
        value=float(value) if state == COMPLETE else None,
        reason=reason,
        returns=returns,
        window=window,
    )


def run_chunk(runner: TrialRunner, items: list[tuple[int, dict[str, Any]]]) -> list[Trial]:
    """Run ``(number, params)`` items in order (one worker's share of a grid)."""
    return [runner.run(number, params) for number, params in items]
