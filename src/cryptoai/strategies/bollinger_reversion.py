"""Bollinger mean reversion: buy a close below the lower band, exit when the close crosses the
middle band; optionally short a close above the upper band."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError
from cryptoai.strategies.base import BarContext, BaseStrategy
from cryptoai.strategies.registry import register_strategy


@register_strategy("bollinger_reversion")
class BollingerReversion(BaseStrategy):
    """Bands: rolling mean of close over ``window`` bars +- ``k`` population std (as ``ta``).

    Long when the close is below the lower band, short (if ``allow_short``) above the upper
    band, flat when the close crosses the middle band; band signals win over the cross.
    """

    params = {"window": 20, "k": 2.0, "allow_short": False}

    def validate(self) -> None:
        if self.window < 2 or self.k <= 0:
            raise BadInputError(
                f"bollinger_reversion: need window >= 2 and k > 0, got window={self.window} k={self.k}"
            )

    def bands(self, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from cryptoai.features.indicators import bollinger

        def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            b = bollinger(data["close"], self.window, self.k)
            return b["lband"].to_numpy(), b["mavg"].to_numpy(), b["hband"].to_numpy()

        return self.cached(("bollinger", self.window, self.k), compute)

    def signals(self, data: pd.DataFrame) -> pd.Series:
        lower, mid, upper = self.bands(data)
        close = data["close"].to_numpy()
        above = close >= mid
        defined = ~np.isnan(mid)
        crossed = np.zeros(len(close), dtype=bool)
        crossed[1:] = defined[1:] & defined[:-1] & (above[1:] != above[:-1])
        target = np.full(len(close), np.nan)
        target[crossed] = 0.0
        target[close < lower] = 1.0
        if self.allow_short:
            target[close > upper] = -1.0
        return pd.Series(target, index=data.index, name="target").ffill().fillna(0.0)

    def on_start(self, data: pd.DataFrame) -> None:
        # plain float lists: indexing them per bar is several times faster than numpy's
        self._lower, self._mid, self._upper = (x.tolist() for x in self.bands(data))
        self._close = data["close"].to_numpy().tolist()

    def on_bar(self, ctx: BarContext) -> float | None:
        t = ctx.i
        c = ctx.close
        if c < self._lower[t]:
            return 1.0
        if self.allow_short and c > self._upper[t]:
            return -1.0
        mid, prev_mid = self._mid[t], self._mid[t - 1] if t > 0 else math.nan
        if math.isnan(mid) or math.isnan(prev_mid):
            return None
        return 0.0 if (c >= mid) != (self._close[t - 1] >= prev_mid) else None
