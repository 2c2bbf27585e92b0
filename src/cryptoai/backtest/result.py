"""What a backtest returns: equity, positions, round-trip trades and every fill.

Both engines (vectorized and event-driven) build this same object from the same
execution kernel, so metrics and reports never need to know which engine ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

TRADE_COLUMNS: tuple[str, ...] = (
    "entry_time",
    "exit_time",
    "side",
    "size",
    "entry_price",
    "exit_price",
    "fees",
    "pnl",
    "return",
)
FILL_COLUMNS: tuple[str, ...] = ("time", "side", "size", "price", "fee", "reason")
FILL_REASONS: tuple[str, ...] = (
    "signal",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "liquidation",
    "limit",
    "stop",
    "end",
    "time_stop",
)


@dataclass(frozen=True)
class BacktestResult:
    """One backtest run.

    ``equity``: float64 mark-to-market equity at each bar close (index = bar timestamps, UTC).
    ``position``: signed units held at each bar close. ``trades``: one row per round trip
    (``size`` = units opened, ``entry_price``/``exit_price`` = volume-weighted fill prices,
    ``fees`` and ``pnl`` in cash, ``pnl`` net of fees and funding, ``return`` = pnl / entry
    value). ``fills``: every fill, ``reason`` one of ``FILL_REASONS``.
    """

    equity: pd.Series
    position: pd.Series
    trades: pd.DataFrame
    fills: pd.DataFrame
    initial_cash: float
    settings: dict = field(default_factory=dict)
    funding_paid: float = 0.0
    name: str = ""
    #: the target series that produced the run (vectorized market-order runs), so the same
    #: decisions can be run again, e.g. without costs (``runner.gross_of_costs``)
    targets: pd.Series | None = None

    @property
    def final_equity(self) -> float:
        return float(self.equity.iloc[-1]) if len(self.equity) else float(self.initial_cash)
