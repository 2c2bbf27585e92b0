"""EMA crossover: long when the fast EMA of close crosses above the slow one, flat when below."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numba import njit

from cryptoai.errors import BadInputError
from cryptoai.strategies.base import BarContext, BaseStrategy
from cryptoai.strategies.registry import register_strategy


def ema(close: pd.Series, span: int) -> np.ndarray:
    """``close.ewm(span=span, adjust=False).mean()``, NaN for the first ``span - 1`` bars."""
    from cryptoai.features.indicators import ewm_mean

    return ewm_mean(close, 2.0 / (span + 1.0), span)


@njit(cache=True)
def cross_targets(fast: np.ndarray, slow: np.ndarray, out: np.ndarray) -> np.ndarray:
    """1 from a bar where fast crosses above slow, 0 from a bar where it crosses below.

    A cross at bar t needs both EMAs defined at t - 1 and t: above means
    ``fast[t] > slow[t]`` after ``fast[t-1] <= slow[t-1]``; below is the mirror.
    """
    state = 0.0
    if out.shape[0] > 0:
        out[0] = 0.0
    for t in range(1, fast.shape[0]):
        d = fast[t] - slow[t]
        p = fast[t - 1] - slow[t - 1]
        if d > 0.0 and p <= 0.0:
            state = 1.0
        elif d < 0.0 and p >= 0.0:
            state = 0.0
        out[t] = state
    return out


@register_strategy("ema_cross")
class EmaCross(BaseStrategy):
    """Long when EMA(fast) crosses above EMA(slow), flat when it crosses below."""

    params = {"fast": 12, "slow": 26}

    def validate(self) -> None:
        if self.fast < 1 or self.slow < 1:
            raise BadInputError(
                f"ema_cross: spans must be >= 1, got fast={self.fast} slow={self.slow}"
            )
        if self.fast >= self.slow:
            raise BadInputError(
                f"ema_cross: fast={self.fast} must be shorter than slow={self.slow}: swap or change them"
            )

    def emas(self, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        fast = self.cached(("ema", self.fast), lambda: ema(data["close"], self.fast))
        slow = self.cached(("ema", self.slow), lambda: ema(data["close"], self.slow))
        return fast, slow

    def line_keys(self) -> tuple[tuple[str, int], tuple[str, int]]:
        """Identities of the two crossover lines (sweeps compute each distinct line once)."""
        return ("ema", self.fast), ("ema", self.slow)

    def crossover_lines(self, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The signal is exactly a crossover of these two lines (see ``cross_targets``)."""
        return self.emas(data)

    def signals(self, data: pd.DataFrame) -> pd.Series:
        fast, slow = self.emas(data)
        out = cross_targets(fast, slow, np.empty(len(data)))
        return pd.Series(out, index=data.index, name="target")

    def on_start(self, data: pd.DataFrame) -> None:
        fast, slow = self.emas(data)
        self._fast, self._slow = fast.tolist(), slow.tolist()  # floats index fastest per bar

    def on_bar(self, ctx: BarContext) -> float | None:
        t = ctx.i
        if t == 0:
            return None
        d = self._fast[t] - self._slow[t]
        p = self._fast[t - 1] - self._slow[t - 1]
        if math.isnan(d) or math.isnan(p):
            return None
        if d > 0 and p <= 0:
            return 1.0
        if d < 0 and p >= 0:
            return 0.0
        return None
