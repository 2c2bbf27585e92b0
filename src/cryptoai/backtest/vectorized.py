"""Vectorized engine: a target-position series in, a `BacktestResult` out.

The target at bar ``t`` is the decision at the close of ``t``: +1 long, -1 short, 0 flat
(fractions scale the size), NaN keeps the previous target. The path-dependent part (fills,
stops, sizing, margin) runs in the shared numba kernel.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cryptoai.backtest import kernel as k
from cryptoai.backtest.assemble import build_result
from cryptoai.backtest.market import check_data, market_matrix, params
from cryptoai.backtest.result import BacktestResult
from cryptoai.backtest.settings import ExecutionSettings, make_settings
from cryptoai.errors import BadInputError

log = logging.getLogger(__name__)


def align(values: pd.Series | np.ndarray | list | None, index: pd.DatetimeIndex, what: str) -> np.ndarray | None:
    """A per-bar float array aligned to ``index`` (Series are matched by timestamp)."""
    if values is None:
        return None
    if isinstance(values, pd.Series):
        if isinstance(values.index, pd.DatetimeIndex) and not values.index.equals(index):
            if values.index.tz is None:
                raise BadInputError(f"{what} has a timezone-naive index: localize it to UTC first")
            values = values.reindex(index)
        arr = values.to_numpy(dtype="float64", na_value=np.nan)
    else:
        arr = np.asarray(values, dtype="float64")
    if arr.ndim != 1 or len(arr) != len(index):
        raise BadInputError(f"{what} has {arr.size} values for {len(index)} bars: align it to the data")
    if np.isinf(arr).any():
        raise BadInputError(f"{what} contains infinite values: use finite numbers or NaN")
    return np.ascontiguousarray(arr)


def order_arrays(
    index: pd.DatetimeIndex, limit_price: pd.Series | np.ndarray | None, stop_price: pd.Series | np.ndarray | None
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
            raise BadInputError("a bar has both a limit and a stop price: give one order type per bar")
        kinds[set_] = kind
        prices[set_] = arr[set_]
    return kinds, prices


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
    m = market_matrix(data, cfg, funding)
    p = params(cfg, index)
    state = k.new_state(cfg.initial_cash)
    fills, out = k.run_targets(state, p, m, tgt, kinds, prices)
    extra = {"engine": "vectorized", "funding": "series" if funding is not None else "rate"}
    return build_result(index, fills, out, state, cfg, name=name, extra_settings=extra)
