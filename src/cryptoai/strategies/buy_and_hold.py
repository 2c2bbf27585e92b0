"""Buy and hold: long from the first decision to the end (the benchmark of every backtest)."""

from __future__ import annotations

import pandas as pd

from cryptoai.strategies.base import BarContext, BaseStrategy
from cryptoai.strategies.registry import register_strategy


@register_strategy("buy_and_hold")
class BuyAndHold(BaseStrategy):
    """Target +1 from the first bar's close on (so the position opens at the second bar)."""

    params = {}

    def signals(self, data: pd.DataFrame) -> pd.Series:
        return pd.Series(1.0, index=data.index, name="target")

    def on_bar(self, ctx: BarContext) -> float | None:
        return 1.0
