"""Trade out-of-sample model predictions: long above a threshold, short below another.

Predictions are aligned to bars by timestamp; the prediction stamped at bar t is the
decision at t's close and trades at t+1 like any other signal. A bar without a prediction
is flat.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError
from cryptoai.strategies.base import BarContext, BaseStrategy
from cryptoai.strategies.registry import register_strategy


@register_strategy("model_signal")
class ModelSignal(BaseStrategy):
    """``predictions``: a Series (probability of an up move, or expected return) indexed like
    the data, or the name of a data column (``column``). Long when the prediction is above
    ``long_above``; short when below ``short_below`` (``None``: never short); flat otherwise.
    For expected returns use e.g. ``long_above=0.0, short_below=0.0``."""

    params = {"predictions": None, "column": "prediction", "long_above": 0.55, "short_below": None}

    def validate(self) -> None:
        if self.short_below is not None:
            try:
                self.short_below = float(self.short_below)
            except (TypeError, ValueError):
                raise BadInputError(
                    f"model_signal: short_below={self.short_below!r} is not a number"
                ) from None
            if self.short_below > self.long_above:
                raise BadInputError(
                    f"model_signal: short_below={self.short_below} is above long_above={self.long_above}:"
                    " the long and short zones would overlap"
                )
        p = self.predictions
        if p is not None and not isinstance(p, pd.Series):
            raise BadInputError(
                "model_signal: predictions must be a pandas Series indexed by bar time"
            )

    def aligned(self, data: pd.DataFrame) -> np.ndarray:
        """Predictions as one float per bar (NaN where there is none)."""
        p = self.predictions
        if p is None:
            if self.column not in data.columns:
                raise BadInputError(
                    f"model_signal needs predictions: pass a Series or add a {self.column!r} column"
                )
            return data[self.column].to_numpy(dtype="float64")
        if isinstance(p.index, pd.DatetimeIndex):
            if p.index.tz is None:
                raise BadInputError(
                    "model_signal: prediction timestamps are tz-naive: localize them to UTC"
                )
            if not p.index.is_unique:
                raise BadInputError(
                    "model_signal: duplicated prediction timestamps: keep one per bar"
                )
            overlap = p.index.intersection(data.index)
            if len(overlap) == 0:
                raise BadInputError(
                    "model_signal: no prediction timestamp matches a bar: align predictions to bar open times"
                )
            return p.reindex(data.index).to_numpy(dtype="float64")
        if len(p) != len(data):
            raise BadInputError(
                f"model_signal: {len(p)} predictions for {len(data)} bars: index them by bar time"
            )
        return p.to_numpy(dtype="float64")

    def _target(self, pred: np.ndarray) -> np.ndarray:
        target = np.zeros(len(pred))
        target[pred > self.long_above] = 1.0
        if self.short_below is not None:
            target[pred < self.short_below] = -1.0
        return target

    def signals(self, data: pd.DataFrame) -> pd.Series:
        return pd.Series(self._target(self.aligned(data)), index=data.index, name="target")

    def on_start(self, data: pd.DataFrame) -> None:
        self._pred = self.aligned(data).tolist()

    def on_bar(self, ctx: BarContext) -> float | None:
        x = self._pred[ctx.i]
        if x > self.long_above:
            return 1.0
        if self.short_below is not None and x < self.short_below:
            return -1.0
        return 0.0
