"""Optimization: parameter search over strategies and models, with the statistics that say
how much of the best result is luck (deflated Sharpe ratio, probability of backtest
overfitting). Names are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptoai._lazy import lazy_exports

if TYPE_CHECKING:
    from cryptoai.optimize.stats import (
        deflated_sharpe_ratio,
        expected_max_sharpe,
        probabilistic_sharpe_ratio,
        probability_of_backtest_overfitting,
    )

_EXPORTS = {
    "deflated_sharpe_ratio": ".stats",
    "expected_max_sharpe": ".stats",
    "probabilistic_sharpe_ratio": ".stats",
    "probability_of_backtest_overfitting": ".stats",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
