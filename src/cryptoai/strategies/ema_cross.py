"""EMA crossover: long when the fast EMA of close crosses above the slow one, flat when below."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError
from cryptoai.strategies._ema import _close, alpha, cross_targets, ema, ema_cross_targets, emas
from cryptoai.strategies.base import BarContext, BaseStrategy
from cryptoai.strategies.registry import register_strategy


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

    @classmethod
    def line_table(cls, data: pd.DataFrame, keys: Sequence[tuple[str, int]]) -> np.ndarray:
        """The lines named by ``keys`` (from ``line_keys``) as rows of one array, computed
        several per pass over the data (sweeps)."""
        return emas(_close(data), [span for _, span in keys])

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
        out = np.empty(len(data))
        if self.cache is None:  # one run: both EMAs and the crossover in one pass
            ema_cross_targets(
                _close(data), alpha(self.fast), self.fast, alpha(self.slow), self.slow, out
            )
        else:
            cross_targets(*self.emas(data), out)
        return pd.Series(out, index=data.index, name="target", copy=False)  # ours: no copy

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
