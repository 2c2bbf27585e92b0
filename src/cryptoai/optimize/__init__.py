"""Optimization: parameter search over strategies and models, with the statistics that say
how much of the best result is luck (deflated Sharpe ratio, probability of backtest
overfitting). Names are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptoai._lazy import lazy_exports

if TYPE_CHECKING:
    from cryptoai.optimize.config import OptimizeConfig, load_optimize_config
    from cryptoai.optimize.results import OptimizationResult
    from cryptoai.optimize.runner import run_optimization
    from cryptoai.optimize.significance import sweep_statistics
    from cryptoai.optimize.stability import stable_region
    from cryptoai.optimize.stats import (
        deflated_sharpe_ratio,
        expected_max_sharpe,
        probabilistic_sharpe_ratio,
        probability_of_backtest_overfitting,
    )

_EXPORTS = {
    "OptimizationResult": ".results",
    "OptimizeConfig": ".config",
    "load_optimize_config": ".config",
    "run_optimization": ".runner",
    "stable_region": ".stability",
    "sweep_statistics": ".significance",
    "deflated_sharpe_ratio": ".stats",
    "expected_max_sharpe": ".stats",
    "probabilistic_sharpe_ratio": ".stats",
    "probability_of_backtest_overfitting": ".stats",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
