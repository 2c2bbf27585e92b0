"""RSI mean reversion: buy when RSI is below ``lower``, exit (or short) when above ``upper``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError
from cryptoai.strategies.base import BarContext, BaseStrategy
from cryptoai.strategies.registry import register_strategy


@register_strategy("rsi_reversion")
class RsiReversion(BaseStrategy):
    """Wilder's RSI of close over ``window`` bars (as ``ta``). Long when RSI < ``lower``;
    when RSI > ``upper`` flat, or short if ``allow_short``."""

    params = {"window": 14, "lower": 30.0, "upper": 70.0, "allow_short": False}

    def validate(self) -> None:
        if self.window < 2:
            raise BadInputError(f"rsi_reversion: window must be >= 2, got {self.window}")
        if not 0 <= self.lower < self.upper <= 100:
            raise BadInputError(
                f"rsi_reversion: need 0 <= lower < upper <= 100, got lower={self.lower} upper={self.upper}"
            )

    def rsi(self, data: pd.DataFrame) -> np.ndarray:
        from cryptoai.features.indicators import rsi

        return self.cached(("rsi", self.window), lambda: rsi(data["close"], self.window).to_numpy())

    def signals(self, data: pd.DataFrame) -> pd.Series:
        r = self.rsi(data)
        target = np.full(len(r), np.nan)
        target[r < self.lower] = 1.0
        target[r > self.upper] = -1.0 if self.allow_short else 0.0
        return pd.Series(target, index=data.index, name="target").ffill().fillna(0.0)

    def on_start(self, data: pd.DataFrame) -> None:
        self._rsi = self.rsi(data).tolist()

    def on_bar(self, ctx: BarContext) -> float | None:
        r = self._rsi[ctx.i]
        if r < self.lower:
            return 1.0
        if r > self.upper:
            return -1.0 if self.allow_short else 0.0
        return None
