"""Event-driven engine: the strategy sees each bar at its close and submits orders.

signal -> order -> execution: ``on_bar`` returns a target or places an order; the order is
handed to the same compiled execution model the vectorized engine uses (``kernel.step``:
this bar's close, then the next bar's open), so both engines fill identically.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from cryptoai._progress import tqdm
from cryptoai.backtest import _kernel as k
from cryptoai.backtest._assemble import build_result
from cryptoai.backtest._market import check_data, market_matrix, may_fund, params
from cryptoai.backtest.result import BacktestResult
from cryptoai.backtest.settings import ExecutionSettings, make_settings
from cryptoai.errors import BadInputError
from cryptoai.strategies.base import BarContext, BaseStrategy

log = logging.getLogger(__name__)

PROGRESS_MIN_BARS = 200_000  # show a progress bar only for long runs


class Broker:
    """The strategy's view of the account and its order channel for the current bar."""

    __slots__ = ("state", "has_order", "target", "kind", "price")

    def __init__(self, state: np.ndarray) -> None:
        self.state = state
        self.reset()

    def reset(self) -> None:
        self.has_order = False
        self.target = 0.0
        self.kind = k.K_MARKET
        self.price = math.nan

    def submit(self, target: float, limit: float | None = None, stop: float | None = None) -> None:
        target = float(target)
        if not math.isfinite(target):
            raise BadInputError(f"order target must be a finite number, got {target}")
        if limit is not None and stop is not None:
            raise BadInputError(
                "an order is either a limit or a stop order: give limit or stop, not both"
            )
        price = limit if limit is not None else stop
        if price is not None and not (math.isfinite(price) and price > 0):
            raise BadInputError(f"order price must be a positive number, got {price}")
        self.has_order = True
        self.target = target
        self.kind = k.K_LIMIT if limit is not None else k.K_STOP if stop is not None else k.K_MARKET
        self.price = math.nan if price is None else float(price)

    def cancel(self) -> None:
        self.has_order = True
        self.kind = k.K_CANCEL

    @property
    def position(self) -> float:
        return float(self.state[k.S_UNITS])

    @property
    def cash(self) -> float:
        return float(self.state[k.S_CASH])

    def equity_at(self, price: float) -> float:
        return float(self.state[k.S_CASH] + self.state[k.S_UNITS] * price)


def run_event(
    data: pd.DataFrame,
    strategy: BaseStrategy,
    settings: ExecutionSettings | dict | None = None,
    *,
    funding: pd.Series | None = None,
    name: str = "",
    validate: bool = True,
    progress: bool | None = None,
) -> BacktestResult:
    """Backtest ``strategy`` bar by bar; same fills, fees and stops as ``run_vectorized``."""
    if not isinstance(strategy, BaseStrategy):
        raise BadInputError(f"run_event needs a strategy instance, got {type(strategy).__name__}")
    cfg = make_settings(settings)
    if validate:
        check_data(data)
    elif len(data) == 0:
        raise BadInputError("data has no bars: load a non-empty date range")
    index = data.index
    n = len(index)
    m = market_matrix(data, cfg, funding)
    p = params(cfg, index, m, funded=may_fund(cfg, funding))
    # one 2-D array: cheaper to hand to the compiled step than a tuple, once per bar
    m2 = np.ascontiguousarray(np.vstack(m))
    state = k.new_state(cfg.initial_cash)
    fills = np.empty((min(2 * n, 1 << 14) + 2 * k.FILL_HEADROOM, k.N_FILL))
    out = np.empty((k.N_OUT, n))
    broker = Broker(state)
    ctx = BarContext(index, broker)
    opens, highs, lows, closes = (m[j].tolist() for j in (k.M_OPEN, k.M_HIGH, k.M_LOW, k.M_CLOSE))
    volumes = data["volume"].to_numpy(dtype="float64").tolist()
    room = fills.shape[0] - k.FILL_HEADROOM
    market = k.K_MARKET
    nan = math.nan

    strategy._broker = broker
    try:
        strategy.on_start(data)
        recorded = k.step(state, fills, p, m2, out, -1, False, 0.0, market, nan)
        on_bar = strategy.on_bar
        step = k.step
        last = 0.0  # the last target on_bar returned (None / NaN keep it)
        show = progress if progress is not None else n >= PROGRESS_MIN_BARS
        bars = tqdm(range(n), desc=f"backtest {strategy.name}", unit="bar") if show else range(n)
        for i in bars:
            ctx.i = i
            ctx.open = opens[i]
            ctx.high = highs[i]
            ctx.low = lows[i]
            ctx.close = closes[i]
            ctx.volume = volumes[i]
            value = on_bar(ctx)
            # a returned target places an order only when it changes, as in the vectorized engine
            if value is not None and value == value and value != last:
                last = float(value)
                broker.submit(last)
            if recorded > room:
                fills = k.grow(fills)
                room = fills.shape[0] - k.FILL_HEADROOM
            if broker.has_order:
                recorded = step(
                    state, fills, p, m2, out, i, True, broker.target, broker.kind, broker.price
                )
                broker.reset()
            else:
                recorded = step(state, fills, p, m2, out, i, False, 0.0, market, nan)
        strategy.on_finish()
    finally:
        strategy._broker = None
    extra = {"engine": "event", "funding": "series" if funding is not None else "rate"}
    return build_result(
        index, fills[: int(state[k.S_NF])], out, state, cfg, name=name, extra_settings=extra
    )
