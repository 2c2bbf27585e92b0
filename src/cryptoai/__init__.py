"""cryptoai: machine-learning trading research on crypto markets.

The public surface is small and imported lazily (``import cryptoai`` loads nothing heavy):

- data: ``load``, ``fetch``, ``validate``
- features and targets: ``build_features``, ``make_target``
- models: ``train`` (purged walk-forward validation, tracked in MLflow)
- backtests: ``run_backtest``, ``sweep``, ``ExecutionSettings``, ``Strategy``,
  ``register_strategy``
- optimization: ``run_optimization`` (grid / random / Optuna / walk-forward, with the
  deflated Sharpe ratio and the probability of backtest overfitting)
- deployment: ``predict`` (a registered model on raw candles; see docs/serving.md)

Everything else lives in the subpackages (``cryptoai.data``, ``cryptoai.features``,
``cryptoai.modeling``, ``cryptoai.backtest``, ``cryptoai.strategies``, ``cryptoai.research``,
``cryptoai.tracking``); see docs/architecture.md. No public name here shadows a subpackage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptoai._lazy import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
    from cryptoai._api import fetch, load, validate
    from cryptoai.backtest.runner import run_backtest
    from cryptoai.backtest.settings import ExecutionSettings
    from cryptoai.backtest.sweeps import sweep
    from cryptoai.features.engineering import build_features
    from cryptoai.modeling.labels import make_target
    from cryptoai.modeling.training import train
    from cryptoai.optimize.runner import run_optimization
    from cryptoai.plugins import load_plugins
    from cryptoai.serve.runtime import predict
    from cryptoai.strategies.base import Strategy
    from cryptoai.strategies.registry import register_strategy

_EXPORTS = {
    "load": "cryptoai._api",
    "fetch": "cryptoai._api",
    "validate": "cryptoai._api",
    "build_features": "cryptoai.features.engineering",
    "make_target": "cryptoai.modeling.labels",
    "train": "cryptoai.modeling.training",
    "run_backtest": "cryptoai.backtest.runner",
    "sweep": "cryptoai.backtest.sweeps",
    "ExecutionSettings": "cryptoai.backtest.settings",
    "Strategy": "cryptoai.strategies.base",
    "register_strategy": "cryptoai.strategies.registry",
    "load_plugins": "cryptoai.plugins",
    "run_optimization": "cryptoai.optimize.runner",
    "predict": "cryptoai.serve.runtime",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
