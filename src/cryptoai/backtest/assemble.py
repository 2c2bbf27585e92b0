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
    equity = pd.Series(out[0], index=index, name="equity", copy=True)
    position = pd.Series(out[1], index=index, name="position", copy=True)
    side = np.where(fills[:, 1] > 0, "buy", "sell")
    fill_frame = pd.DataFrame(
        {
            "time": index[fills[:, 0].astype(np.int64)],
            "side": pd.Series(side, dtype="str"),
            "size": fills[:, 2],
            "price": fills[:, 3],
            "fee": fills[:, 4],
            "reason": np.asarray(FILL_REASONS, dtype=object)[fills[:, 5].astype(np.int64)],
        },
        columns=list(FILL_COLUMNS),
    )
    fill_frame["reason"] = fill_frame["reason"].astype("str")
    rt = k.round_trips(np.ascontiguousarray(fills))
    entry_value, exit_value, opened = rt[:, 4], rt[:, 5], rt[:, 3]
    trades = pd.DataFrame(
        {
            "entry_time": index[rt[:, 0].astype(np.int64)],
            "exit_time": index[rt[:, 1].astype(np.int64)],
            "side": pd.Series(np.where(rt[:, 2] > 0, "long", "short"), dtype="str"),
            "size": opened,
            "entry_price": entry_value / opened,
            "exit_price": exit_value / opened,
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
