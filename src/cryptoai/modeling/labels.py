"""Targets for supervised models: direction, forward log-return, multi-horizon, triple-barrier.

A label at bar t looks ahead over bars t+1..t+horizon, measured from the close of bar t (when
a decision can be made). Where that span runs past the data the label is NaN, to be dropped,
never filled; ``target_horizon`` is the look-ahead validation must purge between train and
test folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numba
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from cryptoai.errors import BadInputError


def _check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise BadInputError(f"horizon must be a whole number of bars >= 1, got {horizon!r}")
    return int(horizon)


def _close_values(close: pd.Series) -> np.ndarray:
    if not isinstance(close, pd.Series):
        raise BadInputError(
            f"labels need the close prices as a pandas Series, got {type(close).__name__}"
        )
    return close.to_numpy(dtype=np.float64)


def forward_log_return(close: pd.Series, horizon: int) -> pd.Series:
    """ln(close_{t+h} / close_t); NaN for the last ``horizon`` bars."""
    h = _check_horizon(horizon)
    c = _close_values(close)
    out = np.full(c.shape[0], np.nan)
    if h < c.shape[0]:
        out[:-h] = np.log(c[h:] / c[:-h])
    return pd.Series(out, index=close.index, name=f"fwd_log_ret_{h}")


def direction(close: pd.Series, horizon: int, dead_zone: float = 0.0) -> pd.Series:
    """1.0 if the forward log-return exceeds ``dead_zone``, 0.0 if below ``-dead_zone``.

    Moves inside the closed dead zone (|r| <= dead_zone, so also unchanged prices) carry no
    direction and are NaN, as are bars whose horizon runs past the data.
    """
    if not dead_zone >= 0:
        raise BadInputError(f"dead_zone must be >= 0 (a log-return), got {dead_zone!r}")
    r = forward_log_return(close, horizon).to_numpy()
    out = np.where(r > dead_zone, 1.0, np.where(r < -dead_zone, 0.0, np.nan))
    return pd.Series(out, index=close.index, name=f"direction_{_check_horizon(horizon)}")


def multi_horizon(close: pd.Series, horizons: Sequence[int]) -> pd.DataFrame:
    """Forward log-returns for several horizons, one column ``fwd_log_ret_{h}`` each."""
    if not horizons:
        raise BadInputError("multi_horizon needs at least one horizon, e.g. [1, 4, 24]")
    cols = [forward_log_return(close, h) for h in horizons]
    if len({c.name for c in cols}) != len(cols):
        raise BadInputError(f"horizons must be distinct, got {list(horizons)}")
    return pd.concat(cols, axis=1)


@numba.njit(cache=True, error_model="numpy")
def _triple_barrier_kernel(
    open_, high, low, close, vol, horizon, pt_mult, sl_mult
):  # pragma: no cover
    n = close.shape[0]
    label = np.full(n, np.nan)
    end = np.full(n, -1, dtype=np.int64)
    ret = np.full(n, np.nan)
    scale = np.sqrt(horizon)
    for t in range(n - horizon):
        sigma = vol[t]
        if np.isnan(sigma):
            continue
        c0 = close[t]
        upper = c0 * np.exp(pt_mult * sigma * scale)
        lower = c0 * np.exp(-sl_mult * sigma * scale)
        label[t] = 0.0
        end[t] = t + horizon
        ret[t] = np.log(close[t + horizon] / c0)
        for j in range(t + 1, t + horizon + 1):
            if low[j] <= lower:  # stop first when both are touched in one bar
                label[t] = -1.0
                end[t] = j
                ret[t] = np.log(min(open_[j], lower) / c0)
                break
            if high[j] >= upper:
                label[t] = 1.0
                end[t] = j
                ret[t] = np.log(upper / c0)
                break
    return label, end, ret


def triple_barrier(
    ohlcv: pd.DataFrame,
    horizon: int,
    pt_mult: float = 2.0,
    sl_mult: float = 2.0,
    vol_window: int = 20,
) -> pd.DataFrame:
    """Triple-barrier labels (López de Prado): which of profit-take, stop-loss or time comes first.

    At bar t, sigma_t is the std of one-bar log-returns over the last ``vol_window`` bars
    (known at t). Barriers sit at close_t * exp(+pt_mult * sigma_t * sqrt(horizon)) and
    close_t * exp(-sl_mult * sigma_t * sqrt(horizon)); touches are judged on the high and low
    of bars t+1..t+horizon, and when one bar touches both, the stop counts (conservative).

    Columns: ``label`` (+1 profit-take, -1 stop, 0 time barrier), ``t_end`` (open time of the
    bar where the first barrier was touched, or of bar t+horizon) and ``ret`` (log-return
    realised: the barrier level, the open if it gapped through the stop, or the close at
    t+horizon). NaN/NaT during the volatility warm-up and where the horizon passes the data.
    """
    h = _check_horizon(horizon)
    if not (pt_mult > 0 and sl_mult > 0):
        raise BadInputError(f"pt_mult and sl_mult must be > 0, got {pt_mult!r} and {sl_mult!r}")
    if not isinstance(vol_window, int) or vol_window < 2:
        raise BadInputError(f"vol_window must be a whole number of bars >= 2, got {vol_window!r}")
    missing = [c for c in ("open", "high", "low", "close") if c not in ohlcv.columns]
    if missing:
        raise BadInputError(f"triple_barrier needs OHLC columns; missing {', '.join(missing)}")
    from cryptoai.features.derived import volatility

    cols = {c: ohlcv[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close")}
    vol = volatility(cols["close"], vol_window)
    label, end, ret = _triple_barrier_kernel(
        cols["open"],
        cols["high"],
        cols["low"],
        cols["close"],
        vol,
        h,
        float(pt_mult),
        float(sl_mult),
    )
    hit = end >= 0
    t_end = pd.Series(ohlcv.index[np.where(hit, end, 0)], index=ohlcv.index).where(hit)
    return pd.DataFrame({"label": label, "t_end": t_end, "ret": ret}, index=ohlcv.index)


#: Regime classes (the label values) and their names in predictions.
REGIMES = {-1.0: "down", 0.0: "range", 1.0: "up", 2.0: "high_vol"}


def regime(
    close: pd.Series,
    horizon: int,
    vol_window: int = 20,
    trend_mult: float = 1.0,
    vol_mult: float = 1.5,
) -> pd.Series:
    """Market regime over the next ``horizon`` bars, scaled by what is known at t.

    sigma_t is the std of one-bar log-returns over the last ``vol_window`` bars (known at t).
    Over bars t+1..t+horizon: **high_vol** (2) when the realised std of their one-bar
    log-returns exceeds ``vol_mult * sigma_t`` (for horizon 1: the absolute return over
    sigma_t); else **up** (1) / **down** (-1) when the log-return ln(close_{t+h}/close_t) is
    beyond +/- ``trend_mult * sigma_t * sqrt(horizon)``; else **range** (0). NaN during the
    volatility warm-up and where the horizon passes the data. Like every target it looks
    ahead by construction; only the thresholds come from the past.
    """
    h = _check_horizon(horizon)
    if not isinstance(vol_window, int) or vol_window < 2:
        raise BadInputError(f"vol_window must be a whole number of bars >= 2, got {vol_window!r}")
    if not (trend_mult > 0 and vol_mult > 0):
        raise BadInputError(f"trend_mult and vol_mult must be > 0, got {trend_mult}, {vol_mult}")
    from cryptoai.features.derived import volatility

    c = _close_values(close)
    sigma = volatility(c, vol_window)
    logret = np.full(c.shape[0], np.nan)
    logret[1:] = np.diff(np.log(c))
    n = c.shape[0]
    fwd = np.full(n, np.nan)
    fwd_vol = np.full(n, np.nan)
    if h < n:
        fwd[:-h] = np.log(c[h:] / c[:-h])
        future = np.lib.stride_tricks.sliding_window_view(logret[1:], h)  # rows: t+1..t+h
        fwd_vol[: n - h] = np.abs(future[:, 0]) if h == 1 else future.std(axis=1, ddof=1)
    band = trend_mult * sigma * np.sqrt(h)
    out = np.where(
        fwd_vol > vol_mult * sigma, 2.0, np.where(fwd > band, 1.0, np.where(fwd < -band, -1.0, 0.0))
    )
    out[~(np.isfinite(sigma) & np.isfinite(fwd) & np.isfinite(fwd_vol))] = np.nan
    return pd.Series(out, index=close.index, name=f"regime_{h}")


class TargetConfig(BaseModel):
    """Which target a model learns; validated like every config."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["direction", "forward_return", "triple_barrier", "regime"] = "direction"
    horizon: int = Field(1, ge=1)
    dead_zone: float = Field(0.0, ge=0)
    pt_mult: float = Field(2.0, gt=0)
    sl_mult: float = Field(2.0, gt=0)
    vol_window: int = Field(20, ge=2)
    trend_mult: float = Field(1.0, gt=0)  # regime: trend band in sigma * sqrt(horizon)
    vol_mult: float = Field(1.5, gt=0)  # regime: high volatility beyond vol_mult * sigma


def make_target(
    ohlcv: pd.DataFrame, cfg: TargetConfig | dict | None = None, **fields: object
) -> pd.Series:
    """The target series of ``cfg`` on an OHLCV frame (NaN where it cannot be known).

    ``cfg`` may be a `TargetConfig`, a mapping, or left out in favour of keyword fields:
    ``make_target(df, kind="triple_barrier", horizon=24)``.
    """
    if cfg is None or isinstance(cfg, dict):
        cfg = TargetConfig(**{**(cfg or {}), **fields})
    elif fields:
        raise BadInputError("give either a TargetConfig or keyword fields, not both")
    if "close" not in ohlcv.columns:
        raise BadInputError("targets need an OHLCV frame with a close column")
    if cfg.kind == "direction":
        return direction(ohlcv["close"], cfg.horizon, cfg.dead_zone)
    if cfg.kind == "forward_return":
        return forward_log_return(ohlcv["close"], cfg.horizon)
    if cfg.kind == "regime":
        return regime(ohlcv["close"], cfg.horizon, cfg.vol_window, cfg.trend_mult, cfg.vol_mult)
    tb = triple_barrier(ohlcv, cfg.horizon, cfg.pt_mult, cfg.sl_mult, cfg.vol_window)
    return tb["label"].rename(f"tb_label_{cfg.horizon}")


def target_horizon(cfg: TargetConfig) -> int:
    """Bars a label looks ahead: the gap to purge between training and test rows."""
    return cfg.horizon
