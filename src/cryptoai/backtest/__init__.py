"""Backtesting: two engines over one execution model, sweeps, metrics and reports.

The public surface (imported lazily, so ``import cryptoai.backtest.metrics`` stays light):

- ``run_vectorized(data, target, settings)``: a target-position series in, a result out
  (``targets_from_signals`` builds one from entry/exit signals);
- ``run_event(data, strategy, settings)``: a strategy called at every bar's close;
- ``run_strategy`` / ``run_backtest``: by strategy name, with the buy-and-hold benchmark;
- ``sweep(data, strategy, grid, settings)`` and ``run_many``: many runs in parallel;
- ``ExecutionSettings`` (costs, fill timing, sizing, leverage, exits), ``BacktestResult``.

Assumptions are listed in docs/backtest_assumptions.md.
"""

from __future__ import annotations

from cryptoai._lazy import lazy_exports

_EXPORTS = {
    "BacktestResult": "cryptoai.backtest.result",
    "ExecutionSettings": "cryptoai.backtest.settings",
    "make_settings": "cryptoai.backtest.settings",
    "run_vectorized": "cryptoai.backtest.vectorized",
    "targets_from_signals": "cryptoai.backtest.vectorized",
    "run_event": "cryptoai.backtest.event",
    "run_strategy": "cryptoai.backtest.runner",
    "run_backtest": "cryptoai.backtest.runner",
    "sweep": "cryptoai.backtest.sweeps",
    "run_many": "cryptoai.backtest.sweeps",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
