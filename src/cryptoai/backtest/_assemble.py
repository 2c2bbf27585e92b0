"""Turn the kernel's arrays (fills, per-bar equity and units) into a `BacktestResult`."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from cryptoai.backtest import _kernel as k
from cryptoai.backtest.result import FILL_COLUMNS, FILL_REASONS, TRADE_COLUMNS, BacktestResult
from cryptoai.backtest.settings import ExecutionSettings


def build_result(
    index: pd.DatetimeIndex,
    fills: np.ndarray,
    out: np.ndarray,
    state: np.ndarray,
    settings: ExecutionSettings,
    name: str = "",
    extra_settings: dict | None = None,
    targets: np.ndarray | None = None,
) -> BacktestResult:
    # the kernel's arrays are fresh: wrap them without copying (a copy of 1M bars is ~1 ms)
    equity = pd.Series(out[k.OUT_EQUITY], index=index, name="equity", copy=False)
    position = pd.Series(out[k.OUT_UNITS], index=index, name="position", copy=False)
    # frames from dicts in column order (naming the columns again costs pandas a reindex)
    fill_frame = pd.DataFrame(
        dict(
            zip(
                FILL_COLUMNS,
                (
                    index[fills[:, 0].astype(np.int64)],
                    _labels(fills[:, 1] > 0, ("sell", "buy")),
                    fills[:, 2],
                    fills[:, 3],
                    fills[:, 4],
                    _labels(fills[:, 5].astype(np.int64), FILL_REASONS),
                ),
                strict=True,
            )
        )
    )
    rt = k.round_trips(np.ascontiguousarray(fills))
    entry_value, opened = rt[:, 4], rt[:, 3]
    trades = pd.DataFrame(
        dict(
            zip(
                TRADE_COLUMNS,
                (
                    index[rt[:, 0].astype(np.int64)],
                    index[rt[:, 1].astype(np.int64)],
                    _labels(rt[:, 2] > 0, ("short", "long")),
                    opened,
                    entry_value / opened,
                    rt[:, 5] / opened,
                    rt[:, 6],
                    rt[:, 7],
                    rt[:, 7] / entry_value,
                ),
                strict=True,
            )
        )
    )
    used = settings.to_dict()
    if extra_settings:
        used.update(extra_settings)
    return BacktestResult(
        equity=equity,
        position=position,
        trades=trades,
        fills=fill_frame,
        initial_cash=float(settings.initial_cash),
        settings=used,
        funding_paid=float(state[k.S_FUNDING]),
        name=name,
        targets=None if targets is None else pd.Series(targets, index=index, name="target"),
    )


def _labels(codes: np.ndarray, names: tuple[str, ...]) -> pd.Categorical:
    """Categorical labels from integer (or boolean) codes: cheap, and lists every possible value.

    The codes come from the kernel (always in range), so pandas need not check them again.
    """
    return pd.Categorical.from_codes(codes.astype(np.int8), dtype=_dtype(names), validate=False)


@functools.cache
def _dtype(names: tuple[str, ...]) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(list(names))
