"""Deployment: runtime ``predict`` on raw candles, the FastAPI service, the live loop, drift.

Names load on first use, so ``from cryptoai import serve`` imports neither MLflow nor FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptoai._lazy import lazy_exports

if TYPE_CHECKING:
    from cryptoai.serve.app import create_app
    from cryptoai.serve.drift import DriftReport, drift_report, ks, psi
    from cryptoai.serve.live import LiveConfig, LiveLoop, ManualClock, SystemClock
    from cryptoai.serve.paper import PaperLedger
    from cryptoai.serve.ratelimit import RateLimiter, parse_rate
    from cryptoai.serve.runtime import Predictor, clear_cache, load_predictor, predict

_EXPORTS = {
    "Predictor": ".runtime",
    "clear_cache": ".runtime",
    "load_predictor": ".runtime",
    "predict": ".runtime",
    "create_app": ".app",
    "RateLimiter": ".ratelimit",
    "parse_rate": ".ratelimit",
    "LiveConfig": ".live",
    "LiveLoop": ".live",
    "ManualClock": ".live",
    "SystemClock": ".live",
    "PaperLedger": ".paper",
    "DriftReport": ".drift",
    "drift_report": ".drift",
    "psi": ".drift",
    "ks": ".drift",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
