"""Turn the kernel's arrays (fills, per-bar equity/units/funding) into a `BacktestResult`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptoai.backtest import kernel as k
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
) -> BacktestResult:
    # the kernel's arrays are fresh: wrap them without copying (a copy of 1M bars is ~1 ms)
    equity = pd.Series(out[0], index=index, name="equity", copy=False)
    position = pd.Series(out[1], index=index, name="position", copy=False)
    fill_frame = pd.DataFrame(
        {
            "time": index[fills[:, 0].astype(np.int64)],
            "side": _labels(fills[:, 1] > 0, ("sell", "buy")),
            "size": fills[:, 2],
            "price": fills[:, 3],
            "fee": fills[:, 4],
            "reason": _labels(fills[:, 5].astype(np.int64), FILL_REASONS),
        },
        columns=list(FILL_COLUMNS),
    )
    rt = k.round_trips(np.ascontiguousarray(fills))
    entry_value, opened = rt[:, 4], rt[:, 3]
    trades = pd.DataFrame(
        {
            "entry_time": index[rt[:, 0].astype(np.int64)],
            "exit_time": index[rt[:, 1].astype(np.int64)],
            "side": _labels(rt[:, 2] > 0, ("short", "long")),
            "size": opened,
            "entry_price": entry_value / opened,
            "exit_price": rt[:, 5] / opened,
            "fees": rt[:, 6],
            "pnl": rt[:, 7],
            "return": rt[:, 7] / entry_value,
        },
        columns=list(TRADE_COLUMNS),
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
    )


def _labels(codes: np.ndarray, names: tuple[str, ...]) -> pd.Categorical:
    """Categorical labels from integer (or boolean) codes: cheap, and lists every possible value."""
    return pd.Categorical.from_codes(codes.astype(np.int8), categories=list(names))
