"""One trial: a strategy with one parameter set, backtested with the sweep's settings.

Strategies with vectorized signals run many trials at once through the parallel kernel
(``run_chunk``), which tallies the round trips and the returns' moments as it goes: the
metrics are those of one ``run_strategy`` + ``compute_metrics`` per set, at a small
fraction of the cost, and no per-bar array is kept. Event-driven strategies run one
backtest per trial.

A trial keeps its metrics (``compute_metrics`` keys) for the results and, for the
statistics, a ``ReturnsSummary`` of its per-bar returns (moments and the per-block sums
the PBO needs; ``cryptoai.optimize.moments``), or the returns themselves. Its state is
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
from cryptoai.optimize.moments import ReturnsSummary, from_kernel, pbo_splits, summarize

COMPLETE, FAILED, SKIPPED = "complete", "failed", "skipped"


@dataclass
class Trial:
    """What one parameter set did. ``value`` is the objective (None unless complete);
    ``returns`` the per-bar returns, or ``summary`` what the statistics need of them
    (neither is written to results.json)."""

    number: int
    params: dict[str, Any]
    metrics: dict[str, Any]
    state: str
    value: float | None = None
    reason: str = ""
    returns: np.ndarray | None = field(default=None, repr=False)
    window: int | None = None
    summary: ReturnsSummary | None = field(default=None, repr=False)

    def returns_summary(self) -> ReturnsSummary | None:
        """``summary``, or one made from ``returns`` (None when the trial has neither)."""
        if self.summary is None and self.returns is not None:
            self.summary = summarize(self.returns)
        return self.summary

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
    from cryptoai.backtest.metrics import bar_returns as series_returns

    return series_returns(result.equity, result.initial_cash).to_numpy()


@dataclass(frozen=True)
class TrialRunner:
    """Everything a trial needs besides its parameters (picklable, for worker processes)."""

    data: pd.DataFrame
    strategy: str
    fixed: Mapping[str, Any]
    settings: Any
    metric: str
    min_trades: int

    @property
    def compiled(self) -> bool:
        """True when trials can run many at once through the parallel kernel."""
        from cryptoai.strategies.registry import get_strategy

        return get_strategy(self.strategy).has_signals()

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
    summary: ReturnsSummary | None = None,
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
        summary=summary,
    )


def run_chunk(
    runner: TrialRunner, items: list[tuple[int, dict[str, Any]]], progress: bool = False
) -> list[Trial]:
    """Run ``(number, params)`` items, results in their order: in blocks through the
    parallel kernel when the strategy has vectorized signals, else one backtest each."""
    if runner.compiled:
        return run_compiled(runner, items, progress=progress)
    return [runner.run(number, params) for number, params in items]


def run_compiled(
    runner: TrialRunner, items: list[tuple[int, dict[str, Any]]], progress: bool = False
) -> list[Trial]:
    """Trials of a strategy with vectorized signals, through the parallel kernel in blocks;
    each gets the metrics one ``run_strategy`` would give it and the summary of its
    returns (not the returns)."""
    from cryptoai.backtest import _kernel as k
    from cryptoai.backtest.metrics import metrics_row, metrics_table
    from cryptoai.backtest.sweeps import simulate_strategies
    from cryptoai.strategies.registry import get_strategy

    cls = get_strategy(runner.strategy)
    out: list[Trial | None] = [None] * len(items)
    strategies, slots = [], []
    for slot, (number, params) in enumerate(items):
        params = dict(params)
        try:
            strategies.append(cls(**{**runner.fixed, **params}))
            slots.append(slot)
        except BadInputError as exc:
            out[slot] = Trial(number, params, {}, SKIPPED, reason=str(exc))
    if strategies:
        settings = runner.settings
        cash = float(settings.initial_cash)
        index = runner.data.index
        n = len(index)
        n_blocks = pbo_splits(n)
        runs = simulate_strategies(
            runner.data, strategies, settings, paths=n_blocks, progress=progress
        )
        for first, res, (stats, sums) in runs:
            final = res[:, k.RES_EQUITY]
            table = metrics_table(final, index, cash, _tallies(res), stats)
            for row in range(res.shape[0]):
                slot = slots[first + row]
                number, params = items[slot]
                out[slot] = judge(
                    number,
                    dict(params),
                    metrics_row(table, row),
                    None,
                    runner.metric,
                    runner.min_trades,
                    summary=from_kernel(stats[row], sums[row], n, n // n_blocks),
                )
    return out  # type: ignore[return-value] - every slot is filled


def _tallies(res: np.ndarray) -> dict[str, np.ndarray]:
    """The kernel's per-run results as ``metrics_table`` tallies."""
    from cryptoai.backtest import _kernel as k

    columns = {
        "n_trades": k.RES_TRADES,
        "wins": k.RES_WINS,
        "gains": k.RES_GAINS,
        "losses": k.RES_LOSSES,
        "pnl": k.RES_PNL,
        "trade_returns": k.RES_TRET,
        "exposed_bars": k.RES_EXPOSED,
        "fees": k.RES_FEES,
        "notional": k.RES_NOTIONAL,
        "funding": k.RES_FUNDING,
    }
    return {name: res[:, col] for name, col in columns.items()}
