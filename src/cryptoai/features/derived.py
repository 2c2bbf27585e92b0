"""Engineered features beyond the classic indicators: returns, volatility, momentum, volume
and liquidity. All are causal: the value at bar t uses bars up to and including t."""

from __future__ import annotations

import numpy as np

from cryptoai.features.indicators import rolling_mean, rolling_mean_std


def _shift_ratio(close: np.ndarray, period: int) -> np.ndarray:
    out = np.empty(close.shape[0])
    out[: min(period, close.shape[0])] = np.nan
    if period < close.shape[0]:
        np.divide(close[period:], close[:-period], out=out[period:])
    return out


def simple_returns(close: np.ndarray, period: int = 1) -> np.ndarray:
    """close_t / close_{t-period} - 1."""
    out = _shift_ratio(close, period)
    out -= 1.0
    return out


def log_returns(close: np.ndarray, period: int = 1) -> np.ndarray:
    """ln(close_t / close_{t-period}); additive across bars, hence the usual model input."""
    out = _shift_ratio(close, period)
    return np.log(out, out=out)


def volatility(close: np.ndarray, window: int = 20) -> np.ndarray:
    """Rolling standard deviation (ddof=1) of one-bar log returns, per bar (not annualised)."""
    return rolling_mean_std(log_returns(close, 1), window, ddof=1)[1]


def momentum(close: np.ndarray, window: int = 10) -> np.ndarray:
    """Log return over ``window`` bars divided by the volatility expected over that span
    (one-bar volatility x sqrt(window)): a trend strength comparable across regimes."""
    scale = volatility(close, window) * np.sqrt(window)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, log_returns(close, window) / scale, np.nan)


def volume_zscore(volume: np.ndarray, window: int = 20) -> np.ndarray:
    """(volume - rolling mean) / rolling std (ddof=1); NaN where the window is constant."""
    mean, std = rolling_mean_std(volume, window, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, (volume - mean) / std, np.nan)


def amihud(close: np.ndarray, volume: np.ndarray, window: int = 20) -> np.ndarray:
    """Amihud illiquidity: rolling mean of |return| per unit of quote volume (close x volume).

    Bars without volume have no defined ratio; a window containing one is NaN.
    """
    dollar_volume = close * volume
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(
            dollar_volume > 0, np.abs(simple_returns(close, 1)) / dollar_volume, np.nan
        )
    return rolling_mean(ratio, window)


def taker_imbalance(volume: np.ndarray, taker_buy_base: np.ndarray, window: int = 20) -> np.ndarray:
    """Rolling mean of (taker buys - taker sells) / volume, in [-1, 1]: who crosses the spread.

    Needs the exchange's taker-buy volume (Binance klines have it); bars without volume are NaN.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        imbalance = np.where(volume > 0, (2.0 * taker_buy_base - volume) / volume, np.nan)
    return rolling_mean(imbalance, window)
