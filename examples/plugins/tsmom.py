"""An example plugin: time-series momentum, registered under the name ``tsmom``.

    cryptoai backtest --plugins examples/plugins/tsmom.py --strategy tsmom \
        --data synthetic/BTC-USDT/1h --param lookback=48

Long while the close is above its value ``lookback`` bars ago, flat (or short with
``allow_short``) otherwise. The decision at bar t uses closes up to t only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptoai import Strategy, register_strategy
from cryptoai.errors import BadInputError


@register_strategy("tsmom")
class TimeSeriesMomentum(Strategy):
    """Sign of the ``lookback``-bar return as the target position."""

    params = {"lookback": 24, "allow_short": False}

    def validate(self) -> None:
        if self.lookback < 1:
            raise BadInputError(f"tsmom: lookback must be >= 1, got {self.lookback}")

    def signals(self, data: pd.DataFrame) -> pd.Series:
        past = data["close"].shift(self.lookback)
        up = (data["close"] > past).to_numpy()
        low = -1.0 if self.allow_short else 0.0
        target = np.where(past.isna().to_numpy(), 0.0, np.where(up, 1.0, low))
        return pd.Series(target, index=data.index, name="target")
