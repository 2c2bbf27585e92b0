"""Inputs of the execution kernel: the market matrix (prices, volatility, funding) and parameters.

Everything here is computed from data known at the time it is used: the volatility of bar
``i`` (for slippage and volatility-targeted sizing) uses closes up to bar ``i - 1``, and the
cost columns of bar ``i`` (spread, quote volume) are those of bar ``i - 1``, the last bar
completed when bar ``i`` opens (bar 0 uses its own).

The cost model is data and parameters, not code: the kernel reads a per-bar half-spread,
a per-bar quote volume or a per-bar day number (for 30-day fee tiers) and the numbers in
the parameter vector, so every model runs at compiled speed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cryptoai.backtest import _kernel as k
from cryptoai.backtest.metrics import bar_length, periods_per_year
from cryptoai.backtest.settings import COST_MODELS, SIZING, ExecutionSettings
from cryptoai.errors import BadInputError

FUNDING_INTERVAL = pd.Timedelta(hours=8)


def check_data(data: pd.DataFrame, name: str = "data") -> None:
    """Reject empty, NaN, unsorted or otherwise broken candles with a one-line error."""
    from cryptoai.data.validate import check_ohlcv

    if not isinstance(data, pd.DataFrame):
        raise BadInputError(f"{name} must be an OHLCV DataFrame, got {type(data).__name__}")
    if data.empty:
        raise BadInputError(f"{name} has no bars: load a non-empty date range")
    check_ohlcv(data, name=name)


def bar_volatility(close: np.ndarray, window: int) -> np.ndarray:
    """Std of log returns over the last ``window`` returns known at each bar's open.

    NaN while unknown (fewer than two returns before the bar): volatility slippage adds
    nothing there and a volatility-targeted order waits for the first bar with a value.
    """
    logret = pd.Series(np.log(close)).diff()
    vol = logret.rolling(window, min_periods=2).std().shift(1)
    return vol.to_numpy()


def _known(values: np.ndarray) -> np.ndarray:
    """Per-bar values as known at each bar's open: those of the bar before (bar 0: its own)."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    out[:1] = values[:1]
    return out


def cost_columns(
    data: pd.DataFrame, settings: ExecutionSettings, lean: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-bar inputs of the cost model: half-spread (fraction of price), quote volume
    and day number; each is empty (``lean``) or zeros unless the model reads it."""
    n = len(data)
    empty = np.zeros(0 if lean else n)
    spread = qvol = day = empty
    model = settings.cost_model
    if model == "spread":
        if "spread" in data.columns:
            raw = data["spread"].to_numpy(dtype="float64") / data["close"].to_numpy("float64")
            if not np.isfinite(raw).all() or (raw < 0).any():
                raise BadInputError(
                    "the spread column has NaN or negative values: fill them (price units)"
                )
            spread = _known(raw) / 2.0
        elif settings.spread_bps is not None:
            spread = np.full(n, settings.spread_bps / 2e4)
        else:
            raise BadInputError(
                "cost_model=spread needs a 'spread' data column (ask - bid, in price units)"
                " or spread_bps in the settings"
            )
    elif model == "impact":
        if "quote_volume" in data.columns:
            quote = data["quote_volume"].to_numpy(dtype="float64")
        else:
            quote = data["volume"].to_numpy(dtype="float64") * data["close"].to_numpy("float64")
        qvol = _known(np.nan_to_num(quote, nan=0.0))
    elif model == "tiered":
        start = data.index[0].normalize()
        day = ((data.index - start) // pd.Timedelta(days=1)).to_numpy(dtype="float64")
    return (
        np.ascontiguousarray(spread),
        np.ascontiguousarray(qvol),
        np.ascontiguousarray(day),
    )


def may_fund(settings: ExecutionSettings, funding: pd.Series | None = None) -> bool:
    """False when no bar can pay funding (no funding series and a zero rate)."""
    return funding is not None or settings.funding_rate != 0.0


def funding_per_bar(
    index: pd.DatetimeIndex, settings: ExecutionSettings, funding: pd.Series | None = None
) -> np.ndarray:
    """Fraction of notional paid by longs at each bar's close.

    A constant rate per 8h accrues pro rata to the bar length. A ``funding`` series (rates
    stamped at funding times) is charged at the bar that contains each funding time.
    """
    n = len(index)
    if funding is None:
        if settings.funding_rate == 0.0:
            return np.zeros(n)  # calloc: free unless read, and the kernel skips it (P_FUNDED)
        return np.full(n, settings.funding_rate * (bar_length(index) / FUNDING_INTERVAL))
    if not isinstance(funding, pd.Series) or not isinstance(funding.index, pd.DatetimeIndex):
        raise BadInputError("funding must be a pandas Series of rates indexed by UTC timestamps")
    if funding.isna().any():
        raise BadInputError("funding series has NaN rates: fill or drop them first")
    times = (
        funding.index.tz_localize("UTC")
        if funding.index.tz is None
        else funding.index.tz_convert("UTC")
    )
    pos = index.searchsorted(times, side="right") - 1  # bar whose open <= funding time
    keep = (pos >= 0) & (times < index[-1] + bar_length(index))
    out = np.zeros(n)
    np.add.at(out, pos[keep], funding.to_numpy(dtype="float64")[keep])
    return out


def market_matrix(
    data: pd.DataFrame,
    settings: ExecutionSettings,
    funding: pd.Series | None = None,
    *,
    lean: bool = False,
) -> tuple[np.ndarray, ...]:
    """Bars as the kernel's tuple of float64 arrays (open, high, low, close, vol, funding,
    half-spread, quote volume, day number).

    Price columns are used in place when they already are contiguous float64 (no copy).
    ``lean``: the volatility and funding columns are empty when the settings never read
    them (no volatility slippage or sizing; no funding: pass ``funded=False`` to ``params``).
    """
    cols = [
        np.ascontiguousarray(data[c].to_numpy(dtype="float64"))
        for c in ("open", "high", "low", "close")
    ]
    n = len(data)
    if settings.vol_slippage > 0.0 or settings.size == "vol_target":
        vol = bar_volatility(cols[k.M_CLOSE], settings.vol_window)
    else:
        vol = np.zeros(0 if lean else n)
    if lean and not may_fund(settings, funding):
        rates = np.zeros(0)
    else:
        rates = funding_per_bar(data.index, settings, funding)
    return (*cols, np.ascontiguousarray(vol), rates, *cost_columns(data, settings, lean))


def params(
    settings: ExecutionSettings,
    index: pd.DatetimeIndex,
    market: tuple[np.ndarray, ...],
    record: bool = True,
    funded: bool = True,
) -> np.ndarray:
    """Settings as the kernel's parameter vector (``market``: from ``market_matrix``).

    ``funded=False`` (see ``may_fund``) says the funding column is all zeros without
    reading it (a million untouched zeros cost more to read than the rest of this).
    """
    p = np.zeros(k.N_PARAMS)
    p[k.P_FEE] = settings.fee_bps / 1e4
    p[k.P_MAKER] = settings.maker_fee_bps / 1e4
    p[k.P_SLIP] = settings.slippage_bps / 1e4
    p[k.P_VOLSLIP] = settings.vol_slippage
    p[k.P_FILL_CLOSE] = 1.0 if settings.fill_at == "close" else 0.0
    p[k.P_SIZE_MODE] = float(SIZING.index(settings.size))
    value = settings.size_value
    if settings.size == "vol_target":
        value = value / math.sqrt(periods_per_year(index, strict=False))
    p[k.P_SIZE_VALUE] = value
    p[k.P_LEV] = settings.leverage
    p[k.P_MM] = settings.maintenance_margin
    for slot, frac in (
        (k.P_SL, settings.stop_loss),
        (k.P_TP, settings.take_profit),
        (k.P_TRAIL, settings.trailing_stop),
    ):
        p[slot] = math.nan if frac is None else float(frac)
    p[k.P_CLOSE_END] = 1.0 if settings.close_at_end else 0.0
    p[k.P_RECORD] = 1.0 if record else 0.0
    p[k.P_TIME_STOP] = math.nan if settings.time_stop_bars is None else settings.time_stop_bars
    ladder = settings.ladder or ()
    p[k.P_LAD_N] = len(ladder)
    p[k.P_LAD_FULL] = 1.0 if ladder and sum(f for _, f in ladder) >= 1 - 1e-9 else 0.0
    p[k.P_BREAKEVEN] = 1.0 if settings.ladder_breakeven else 0.0
    for j, (gain, frac) in enumerate(ladder):
        p[k.P_LAD + 2 * j] = gain
        p[k.P_LAD + 2 * j + 1] = frac
    p[k.P_COST] = float(COST_MODELS.index(settings.cost_model))
    if settings.cost_model == "spread":
        p[k.P_SLIP] = 0.0  # the half-spread stands in for the fixed slippage
    p[k.P_IMPACT_K] = settings.impact_k / 1e4
    tiers = settings.fee_tiers or ()
    p[k.P_TIER_N] = len(tiers)
    for j, (floor, taker, maker) in enumerate(tiers):
        p[k.P_TIERS + 3 * j : k.P_TIERS + 3 * j + 3] = (floor, taker / 1e4, maker / 1e4)
    stops = (settings.stop_loss, settings.take_profit, settings.trailing_stop)
    exits = any(x is not None for x in stops) or settings.ladder or settings.time_stop_bars
    p[k.P_EXITS] = 1.0 if settings.leverage > 1 or exits else 0.0
    p[k.P_FUNDED] = 1.0 if funded and market[k.M_FUNDING].any() else 0.0
    return p
