"""Trade out-of-sample model predictions: long above a threshold, short below another.

Predictions are aligned to bars by timestamp; the prediction stamped at bar t is the
decision at t's close and trades at t+1 like any other signal. A bar without a prediction
is flat (unless ``min_hold`` keeps the position).

Predictions carry their meaning (docs/backtest_assumptions.md, "Model signals"): a
probability of an up move (``proba_up``, in [0, 1]) or a score (``score``, in [-1, 1]),
read from ``series.attrs["meaning"]`` or else the series (or column) name. The thresholds
are on the scale ``scale`` names (``proba`` by default): a score given to probability
thresholds is converted, ``p = (score + 1) / 2``, with a warning, and unlabelled values
outside [0, 1] are refused, so a score never runs silently against probability thresholds.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from numba import njit

from cryptoai.errors import BadInputError
from cryptoai.strategies.base import BarContext, BaseStrategy
from cryptoai.strategies.registry import register_strategy

log = logging.getLogger(__name__)

MEANINGS = ("proba_up", "score")
SCALES = ("proba", "score", "raw")


def meaning_of(values: pd.Series | None, name: object = None) -> str | None:
    """``proba_up``, ``score`` or None: from ``attrs["meaning"]``, else the name."""
    if values is not None and values.attrs.get("meaning"):
        meaning = str(values.attrs["meaning"])
        if meaning not in MEANINGS:
            raise BadInputError(
                f"model_signal: predictions mean {meaning!r}: use one of {', '.join(MEANINGS)}"
            )
        return meaning
    label = str(name if name is not None else getattr(values, "name", "") or "")
    if label == "proba_up" or label.startswith("proba"):
        return "proba_up"
    if label == "score":
        return "score"
    return None


@njit(cache=True)
def _hysteresis(pred, long_in, long_out, short_in, short_out, shorts, min_hold, out):
    state = 0.0
    held = 0
    for i in range(pred.shape[0]):
        x = pred[i]
        want = state
        if state == 0.0:
            if x > long_in:
                want = 1.0
            elif shorts and x < short_in:
                want = -1.0
        elif state > 0.0:
            if not x > long_out:
                want = -1.0 if shorts and x < short_in else 0.0
        elif not x < short_out:
            want = 1.0 if x > long_in else 0.0
        if want != state and (state == 0.0 or held >= min_hold):
            state = want
            held = 0
        held += 1
        out[i] = state
    return out


@register_strategy("model_signal")
class ModelSignal(BaseStrategy):
    """``predictions``: a Series indexed like the data, or the name of a data column
    (``column``). Long when the prediction is above ``long_above``; short when below
    ``short_below`` (``None``: never short); flat otherwise.

    Hysteresis, so that turnover is a choice: a long is held until the prediction falls to
    ``long_exit`` (default: ``long_above``), a short until it rises to ``short_exit``
    (default: ``short_below``), and a position is held at least ``min_hold`` bars.
    ``scale``: the thresholds' scale, ``proba`` (probabilities), ``score`` (scores in
    [-1, 1]) or ``raw`` (no check, e.g. expected returns with ``long_above=0.0``)."""

    params = {
        "predictions": None,
        "column": "prediction",
        "long_above": 0.55,
        "short_below": None,
        "long_exit": None,
        "short_exit": None,
        "min_hold": 0,
        "scale": "proba",
    }

    def validate(self) -> None:
        for key in ("short_below", "long_exit", "short_exit"):
            value = getattr(self, key)
            if value is not None:
                try:
                    setattr(self, key, float(value))
                except (TypeError, ValueError):
                    raise BadInputError(f"model_signal: {key}={value!r} is not a number") from None
        if self.short_below is not None and self.short_below > self.long_above:
            raise BadInputError(
                f"model_signal: short_below={self.short_below} is above"
                f" long_above={self.long_above}: the long and short zones would overlap"
            )
        if self.long_exit is not None and self.long_exit > self.long_above:
            raise BadInputError(
                f"model_signal: long_exit={self.long_exit} is above long_above="
                f"{self.long_above}: a long would exit as soon as it entered"
            )
        if self.short_exit is not None:
            if self.short_below is None:
                raise BadInputError("model_signal: short_exit needs short_below (shorts)")
            if self.short_exit < self.short_below:
                raise BadInputError(
                    f"model_signal: short_exit={self.short_exit} is below short_below="
                    f"{self.short_below}: a short would exit as soon as it entered"
                )
        if self.min_hold < 0:
            raise BadInputError(f"model_signal: min_hold={self.min_hold}: use 0 or more bars")
        if self.scale not in SCALES:
            raise BadInputError(
                f"model_signal: scale={self.scale!r}: use one of {', '.join(SCALES)}"
            )
        p = self.predictions
        if p is not None and not isinstance(p, pd.Series):
            raise BadInputError(
                "model_signal: predictions must be a pandas Series indexed by bar time"
            )

    def aligned(self, data: pd.DataFrame) -> np.ndarray:
        """Predictions as one float per bar (NaN where there is none), on ``scale``."""
        p = self.predictions
        if p is None:
            if self.column not in data.columns:
                raise BadInputError(
                    f"model_signal needs predictions: pass a Series or add a {self.column!r} column"
                )
            values = data[self.column].to_numpy(dtype="float64")
            return self._on_scale(values, meaning_of(data[self.column], self.column))
        meaning = meaning_of(p)
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
                    "model_signal: no prediction timestamp matches a bar: align predictions"
                    " to bar open times"
                )
            return self._on_scale(p.reindex(data.index).to_numpy(dtype="float64"), meaning)
        if len(p) != len(data):
            raise BadInputError(
                f"model_signal: {len(p)} predictions for {len(data)} bars: index them by bar time"
            )
        return self._on_scale(p.to_numpy(dtype="float64"), meaning)

    def _on_scale(self, values: np.ndarray, meaning: str | None) -> np.ndarray:
        """Predictions on the thresholds' scale: converted when their meaning differs,
        refused when unlabelled and outside the scale's range."""
        if self.scale == "raw":
            return values
        want = "proba_up" if self.scale == "proba" else "score"
        if meaning is None:
            low, high = (0.0, 1.0) if want == "proba_up" else (-1.0, 1.0)
            finite = values[np.isfinite(values)]
            if finite.size and (finite.min() < low or finite.max() > high):
                raise BadInputError(
                    f"model_signal: predictions range {finite.min():.4g} to {finite.max():.4g},"
                    f" outside [{low:g}, {high:g}] of the {self.scale} thresholds: label them"
                    ' (series.attrs["meaning"] = "proba_up" or "score") or pass scale="raw"'
                )
            return values
        if meaning == want:
            return values
        if meaning == "score":
            log.warning(
                "model_signal: predictions are scores in [-1, 1] and the thresholds are"
                " probabilities: trading p = (score + 1) / 2 (pass scale='score' to give"
                " the thresholds as scores)"
            )
            return (values + 1.0) / 2.0
        log.warning(
            "model_signal: predictions are probabilities and the thresholds are scores:"
            " trading score = 2 p - 1"
        )
        return 2.0 * values - 1.0

    def _target(self, pred: np.ndarray) -> np.ndarray:
        shorts = self.short_below is not None
        short_in = self.short_below if shorts else -math.inf
        long_out = self.long_above if self.long_exit is None else self.long_exit
        short_out = short_in if self.short_exit is None else self.short_exit
        return _hysteresis(
            np.ascontiguousarray(pred, dtype="float64"),
            float(self.long_above),
            float(long_out),
            float(short_in),
            float(short_out),
            shorts,
            int(self.min_hold),
            np.empty(len(pred)),
        )

    def signals(self, data: pd.DataFrame) -> pd.Series:
        return pd.Series(self._target(self.aligned(data)), index=data.index, name="target")

    def on_start(self, data: pd.DataFrame) -> None:
        # the hysteresis is path-dependent but causal: each bar's target reads bars up to it
        self._targets = self._target(self.aligned(data)).tolist()

    def on_bar(self, ctx: BarContext) -> float | None:
        return self._targets[ctx.i]
