"""Every feature a spec can name: its parameters, its output columns and how to compute it.

Column names are stable and carry the parameters, so a model trained on ``rsi_14`` finds the
same column tomorrow:

=================  ==========================  ==================================================
feature            parameters (defaults)       columns
=================  ==========================  ==================================================
sma                window=20, relative=False   sma_20 | sma_20_rel (close / sma - 1)
ema                window=20, relative=False   ema_20 | ema_20_rel (close / ema - 1)
rsi                window=14                   rsi_14
macd               fast=12, slow=26, signal=9, macd_12_26_9, macd_signal_12_26_9,
                   relative=False              macd_diff_12_26_9 (``_rel``: divided by close)
bollinger          window=20, dev=2            bb_mavg_20_2, bb_hband_20_2, bb_lband_20_2,
                                               bb_pband_20_2 (%B), bb_wband_20_2 (width, %)
atr                window=14, relative=False   atr_14 | atr_14_rel (atr / close)
ichimoku           window1=9, window2=26,      ichimoku_conv_9, ichimoku_base_26,
                   window3=52, relative=False  ichimoku_a_9_26, ichimoku_b_26_52
                                               (``_rel``: close / line - 1); no chikou
obv                -                           obv
returns            period=1                    ret_1 (simple return)
log_returns        period=1                    ret_log_1
volatility         window=20                   volatility_20 (std of 1-bar log returns)
momentum           window=10                   mom_10 (log return / expected volatility)
volume_zscore      window=20                   volume_z_20
amihud             window=20                   amihud_20 (|return| per quote volume)
taker_imbalance    window=20                   taker_imb_20 (needs column taker_buy_base)
=================  ==========================  ==================================================

Ichimoku gives the lines as known at bar t (`ta`'s ``visual=False``): charts draw the
leading spans ``window2`` bars ahead, and the values here stay at the bar that computed them.
Span B's name carries ``window2`` too, the displacement it is drawn with. The lagging span
(chikou: the close drawn ``window2`` bars back) is not offered: at bar t it would be the close
of bar t + window2, a lookahead.

A feature whose input column is missing from the data (``taker_imbalance`` without
``taker_buy_base``) raises a BadInputError rather than being skipped, so a model never
silently sees different columns on different data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cryptoai._registry import Registry
from cryptoai.features import derived, indicators


class Params(BaseModel):
    """Base of the parameter models: unknown parameters are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


class Window(Params):
    window: int = Field(20, ge=1)


class Window2(Params):
    """Windows of a sample standard deviation need at least two bars."""

    window: int = Field(20, ge=2)


class Smoothing(Params):
    window: int = Field(20, ge=1)
    relative: bool = False


class RSIParams(Params):
    window: int = Field(14, ge=1)


class ATRParams(Params):
    window: int = Field(14, ge=1)
    relative: bool = False


class MACDParams(Params):
    fast: int = Field(12, ge=1)
    slow: int = Field(26, ge=2)
    signal: int = Field(9, ge=1)
    relative: bool = False

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MACDParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be smaller than slow ({self.slow})")
        return self


class BollingerParams(Params):
    window: int = Field(20, ge=2)
    dev: float = Field(2.0, gt=0)


class IchimokuParams(Params):
    window1: int = Field(9, ge=1)
    window2: int = Field(26, ge=1)
    window3: int = Field(52, ge=1)
    relative: bool = False


class Period(Params):
    period: int = Field(1, ge=1)


class MomentumParams(Params):
    window: int = Field(10, ge=2)


Columns = Callable[[Params], list[str]]
Compute = Callable[[pd.DataFrame, Params], list[np.ndarray]]


@dataclass(frozen=True)
class FeatureDef:
    """A named feature: parameter model, output column names, computation, input columns."""

    name: str
    params: type[Params]
    columns: Columns
    compute: Compute
    requires: tuple[str, ...] = ("close",)
    #: ``compute`` also takes a mapping of column name -> float64 array in place of the frame
    #: (every built-in does; the serving plan then never builds a frame). Plugins: False.
    arrays: bool = False


def _col(df: pd.DataFrame | Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """Column ``name`` of a frame, or of a mapping of column name -> array, as float64."""
    return np.ascontiguousarray(np.asarray(df[name], dtype=np.float64))


def _rel(values: np.ndarray, close: np.ndarray, ratio: bool) -> np.ndarray:
    """``close / values - 1`` for averages (ratio) or ``values / close`` for spreads."""
    if not ratio:
        return values / close
    out = close / values
    out -= 1.0
    return out


def _smoothing(name: str, fn: Callable[[np.ndarray, int], np.ndarray]) -> FeatureDef:
    def columns(p: Smoothing) -> list[str]:
        return [f"{name}_{p.window}" + ("_rel" if p.relative else "")]

    def compute(df: pd.DataFrame, p: Smoothing) -> list[np.ndarray]:
        close = _col(df, "close")
        values = fn(close, p.window)
        return [_rel(values, close, True) if p.relative else values]

    return FeatureDef(name, Smoothing, columns, compute)


def _macd_columns(p: MACDParams) -> list[str]:
    tag = f"{p.fast}_{p.slow}_{p.signal}" + ("_rel" if p.relative else "")
    return [f"macd_{tag}", f"macd_signal_{tag}", f"macd_diff_{tag}"]


def _macd(df: pd.DataFrame, p: MACDParams) -> list[np.ndarray]:
    cols = list(indicators.macd_values(_col(df, "close"), p.fast, p.slow, p.signal))
    return [_rel(c, _col(df, "close"), False) for c in cols] if p.relative else cols


def _bb_columns(p: BollingerParams) -> list[str]:
    tag = f"{p.window}_{p.dev:g}"
    return [f"bb_{band}_{tag}" for band in ("mavg", "hband", "lband", "pband", "wband")]


def _bb(df: pd.DataFrame, p: BollingerParams) -> list[np.ndarray]:
    return list(indicators.bollinger_values(_col(df, "close"), p.window, p.dev))


def _atr(df: pd.DataFrame, p: ATRParams) -> list[np.ndarray]:
    values = indicators.atr_values(_col(df, "high"), _col(df, "low"), _col(df, "close"), p.window)
    return [_rel(values, _col(df, "close"), False) if p.relative else values]


def _ichimoku_columns(p: IchimokuParams) -> list[str]:
    rel = "_rel" if p.relative else ""
    w1, w2, w3 = p.window1, p.window2, p.window3
    names = [f"conv_{w1}", f"base_{w2}", f"a_{w1}_{w2}", f"b_{w2}_{w3}"]
    return [f"ichimoku_{n}{rel}" for n in names]


def _ichimoku(df: pd.DataFrame, p: IchimokuParams) -> list[np.ndarray]:
    h, lo = _col(df, "high"), _col(df, "low")
    cols = list(indicators.ichimoku_values(h, lo, p.window1, p.window2, p.window3))
    return [_rel(c, _col(df, "close"), True) for c in cols] if p.relative else cols


_DEFS = [
    _smoothing("sma", indicators.sma_values),
    _smoothing("ema", indicators.ema_values),
    FeatureDef(
        "rsi",
        RSIParams,
        lambda p: [f"rsi_{p.window}"],
        lambda df, p: [indicators.rsi_values(_col(df, "close"), p.window)],
    ),
    FeatureDef("macd", MACDParams, _macd_columns, _macd),
    FeatureDef("bollinger", BollingerParams, _bb_columns, _bb),
    FeatureDef(
        "atr",
        ATRParams,
        lambda p: [f"atr_{p.window}" + ("_rel" if p.relative else "")],
        _atr,
        ("high", "low", "close"),
    ),
    FeatureDef(
        "ichimoku",
        IchimokuParams,
        _ichimoku_columns,
        _ichimoku,
        ("high", "low", "close"),
    ),
    FeatureDef(
        "obv",
        NoParams,
        lambda p: ["obv"],
        lambda df, p: [indicators.obv_values(_col(df, "close"), _col(df, "volume"))],
        ("close", "volume"),
    ),
    FeatureDef(
        "returns",
        Period,
        lambda p: [f"ret_{p.period}"],
        lambda df, p: [derived.simple_returns(_col(df, "close"), p.period)],
    ),
    FeatureDef(
        "log_returns",
        Period,
        lambda p: [f"ret_log_{p.period}"],
        lambda df, p: [derived.log_returns(_col(df, "close"), p.period)],
    ),
    FeatureDef(
        "volatility",
        Window2,
        lambda p: [f"volatility_{p.window}"],
        lambda df, p: [derived.volatility(_col(df, "close"), p.window)],
    ),
    FeatureDef(
        "momentum",
        MomentumParams,
        lambda p: [f"mom_{p.window}"],
        lambda df, p: [derived.momentum(_col(df, "close"), p.window)],
    ),
    FeatureDef(
        "volume_zscore",
        Window2,
        lambda p: [f"volume_z_{p.window}"],
        lambda df, p: [derived.volume_zscore(_col(df, "volume"), p.window)],
        ("volume",),
    ),
    FeatureDef(
        "amihud",
        Window,
        lambda p: [f"amihud_{p.window}"],
        lambda df, p: [derived.amihud(_col(df, "close"), _col(df, "volume"), p.window)],
        ("close", "volume"),
    ),
    FeatureDef(
        "taker_imbalance",
        Window,
        lambda p: [f"taker_imb_{p.window}"],
        lambda df, p: [
            derived.taker_imbalance(_col(df, "volume"), _col(df, "taker_buy_base"), p.window)
        ],
        ("volume", "taker_buy_base"),
    ),
]

#: Every feature a spec may name: the built-ins above, then any a plugin registers.
FEATURES: Registry[FeatureDef] = Registry("feature")
for _d in _DEFS:  # each built-in reads its inputs through ``_col``: a frame or a mapping
    FEATURES.add(_d.name, replace(_d, arrays=True))


def register_feature(
    name: str,
    *,
    columns: Columns,
    params: type[Params] = NoParams,
    inputs: tuple[str, ...] = ("close",),
) -> Callable[[Compute], Compute]:
    """Decorator for a plugin feature: ``compute(df, p)`` returns one array per column name of
    ``columns(p)``; ``params`` is a `Params` model (unknown parameters are errors). The value at
    bar t must use data up to bar t only: the no-lookahead test truncates the history to check.
    """

    def deco(compute: Compute) -> Compute:
        if not (isinstance(params, type) and issubclass(params, Params)):
            raise TypeError(f"register_feature({name!r}): params must subclass Params")
        FEATURES.add(name, FeatureDef(name, params, columns, compute, tuple(inputs)))
        return compute

    return deco


def known_features() -> list[str]:
    """Names a feature spec may use, sorted."""
    return FEATURES.names()
