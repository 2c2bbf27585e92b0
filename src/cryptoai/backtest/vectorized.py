"""Vectorized engine: a target-position series (or entry/exit signals) in, a result out.

The target at bar ``t`` is the decision at the close of ``t``: +1 long, -1 short, 0 flat
(fractions scale the size), NaN keeps the previous target. The path-dependent part (fills,
stops, sizing, margin) runs in the shared numba kernel. ``targets_from_signals`` turns
boolean entry/exit signals into such a series.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from numba import njit

from cryptoai.backtest import _kernel as k
from cryptoai.backtest._assemble import build_result
from cryptoai.backtest._market import check_data, market_matrix, may_fund, params
from cryptoai.backtest.result import BacktestResult
from cryptoai.backtest.settings import ExecutionSettings, make_settings
from cryptoai.errors import BadInputError

log = logging.getLogger(__name__)


def align(
    values: pd.Series | np.ndarray | list | None, index: pd.DatetimeIndex, what: str
) -> np.ndarray | None:
    """A per-bar float array aligned to ``index`` (Series are matched by timestamp)."""
    if values is None:
        return None
    if isinstance(values, pd.Series):
        if isinstance(values.index, pd.DatetimeIndex) and not values.index.equals(index):
            if values.index.tz is None:
                raise BadInputError(f"{what} has a timezone-naive index: localize it to UTC first")
            values = values.reindex(index)
        if values.dtype == np.float64:  # NaN already: no missing-value pass over the data
            arr = values.to_numpy()
        else:
            arr = values.to_numpy(dtype="float64", na_value=np.nan)
    else:
        arr = np.asarray(values, dtype="float64")
    if arr.ndim != 1 or len(arr) != len(index):
        raise BadInputError(
            f"{what} has {arr.size} values for {len(index)} bars: align it to the data"
        )
    arr = np.ascontiguousarray(arr)
    if _has_inf(arr):
        raise BadInputError(f"{what} contains infinite values: use finite numbers or NaN")
    return arr


@njit(cache=True)
def _has_inf(x):  # pragma: no cover - compiled
    """``np.isinf(x).any()`` without the temporary boolean array (one vectorized pass)."""
    found = False
    for i in range(x.shape[0]):
        found |= abs(x[i]) == np.inf
    return found


def order_arrays(
    index: pd.DatetimeIndex,
    limit_price: pd.Series | np.ndarray | None,
    stop_price: pd.Series | np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar order kind and price: limit where ``limit_price`` is set, stop where ``stop_price`` is."""
    limit = align(limit_price, index, "limit_price")
    stop = align(stop_price, index, "stop_price")
    if limit is None and stop is None:
        return np.empty(0, dtype=np.int64), np.empty(0)
    n = len(index)
    kinds = np.full(n, k.K_MARKET, dtype=np.int64)
    prices = np.full(n, np.nan)
    for arr, kind, what in ((limit, k.K_LIMIT, "limit_price"), (stop, k.K_STOP, "stop_price")):
        if arr is None:
            continue
        set_ = ~np.isnan(arr)
        if (arr[set_] <= 0).any():
            raise BadInputError(f"{what} must be positive where set: use NaN for a market order")
        if (kinds[set_] != k.K_MARKET).any():
            raise BadInputError(
                "a bar has both a limit and a stop price: give one order type per bar"
            )
        kinds[set_] = kind
        prices[set_] = arr[set_]
    return kinds, prices


@njit(cache=True)
def _entries_exits(long_in, long_out, short_in, short_out, out):  # pragma: no cover - compiled
    state = 0.0
    for i in range(out.shape[0]):
        if long_in[i] and not long_out[i]:
            state = 1.0
        elif short_in[i] and not short_out[i]:
            state = -1.0
        elif (state > 0.0 and long_out[i]) or (state < 0.0 and short_out[i]):
            state = 0.0
        out[i] = state
    return out


def targets_from_signals(
    entries: pd.Series,
    exits: pd.Series,
    short_entries: pd.Series | None = None,
    short_exits: pd.Series | None = None,
) -> pd.Series:
    """Boolean entry/exit signals as a target-position series for ``run_vectorized``.

    An entry goes long (a short entry short, flipping if needed); an exit closes only its own
    side. A bar with both an entry and an exit of the same side does nothing; a long entry
    wins over a short entry on the same bar.
    """
    index = entries.index

    def flags(x: pd.Series | None, what: str) -> np.ndarray:
        if x is None:
            return np.zeros(len(index), dtype=np.bool_)
        if len(x) != len(index) or not x.index.equals(index):
            raise BadInputError(f"{what} must share the entries' index")
        return x.fillna(False).to_numpy(dtype=np.bool_)

    out = _entries_exits(
        flags(entries, "entries"),
        flags(exits, "exits"),
        flags(short_entries, "short_entries"),
        flags(short_exits, "short_exits"),
        np.empty(len(index)),
    )
    return pd.Series(out, index=index, name="target")


def run_vectorized(
    data: pd.DataFrame,
    target: pd.Series | np.ndarray,
    settings: ExecutionSettings | dict | None = None,
    *,
    limit_price: pd.Series | np.ndarray | None = None,
    stop_price: pd.Series | np.ndarray | None = None,
    funding: pd.Series | None = None,
    name: str = "",
    validate: bool = True,
) -> BacktestResult:
    """Backtest a target-position series on OHLCV ``data``.

    ``limit_price``/``stop_price``: optional per-bar prices that make the order placed at that
    bar a limit or stop order (NaN: market). ``funding``: perpetual funding rates stamped at
    funding times (overrides ``settings.funding_rate``). ``validate=False`` skips the OHLCV
    checks for data already validated (benchmarks, sweeps).
    """
    cfg = make_settings(settings)
    if validate:
        check_data(data)
    elif len(data) == 0:
        raise BadInputError("data has no bars: load a non-empty date range")
    index = data.index
    tgt = align(target, index, "target position")
    kinds, prices = order_arrays(index, limit_price, stop_price)
    m = market_matrix(data, cfg, funding, lean=True)
    p = params(cfg, index, m, funded=may_fund(cfg, funding))
    state = k.new_state(cfg.initial_cash)
    fills, out = k.run_targets(state, p, m, tgt, kinds, prices)
    extra = {"engine": "vectorized", "funding": "series" if funding is not None else "rate"}
    market_only = limit_price is None and stop_price is None
    return build_result(
        index,
        fills,
        out,
        state,
        cfg,
        name=name,
        extra_settings=extra,
        targets=tgt if market_only else None,
    )
