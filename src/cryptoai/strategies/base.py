"""The strategy interface shared by both backtest engines.

A strategy declares its parameters with defaults in the class-level ``params`` dict and
implements one or both of:

* ``signals(data)``: the whole target-position series at once (vectorized engine, sweeps);
* ``on_bar(ctx)``: the decision at the close of one bar (event engine). Return a target
  position (same meaning as one value of ``signals``: +1 long, -1 short, 0 flat, ``None``
  or NaN keep the last target) or place orders with ``order_target``, ``buy``, ``sell``,
  ``close`` (optionally as limit or stop orders) and ``cancel``.

Both read only bars up to the decision bar; orders fill at the next open by default.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError

if TYPE_CHECKING:
    from cryptoai.backtest.event import Broker


class BarContext:
    """The bar being decided on (updated in place each bar, so it costs nothing to pass).

    ``i`` is the bar number; ``open high low close volume`` its prices; ``time`` its open
    time; ``position``, ``cash`` and ``equity`` the account after this bar's fills so far.
    """

    __slots__ = ("i", "open", "high", "low", "close", "volume", "_index", "_broker")

    def __init__(self, index: pd.DatetimeIndex, broker: Broker) -> None:
        self.i = -1
        self.open = self.high = self.low = self.close = self.volume = math.nan
        self._index = index
        self._broker = broker

    @property
    def time(self) -> pd.Timestamp:
        return self._index[self.i]

    @property
    def position(self) -> float:
        return self._broker.position

    @property
    def cash(self) -> float:
        return self._broker.cash

    @property
    def equity(self) -> float:
        return self._broker.equity_at(self.close)


class BaseStrategy:
    """Base class: class-level ``params`` defaults, ``on_start`` / ``on_bar`` / ``on_finish``
    hooks and an optional vectorized ``signals`` fast path."""

    name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        self.params = self.resolve_params(params)
        for key, value in self.params.items():
            if hasattr(BaseStrategy, key):
                raise TypeError(
                    f"{type(self).__name__}: parameter {key!r} would hide BaseStrategy.{key}"
                )
            setattr(self, key, value)
        self._broker: Broker | None = None
        self.cache: dict[Any, Any] | None = None
        self.validate()

    # --- parameters ---------------------------------------------------------------------

    @classmethod
    def resolve_params(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``given``; unknown names and wrong types are one-line errors."""
        unknown = sorted(set(given) - set(cls.params))
        if unknown:
            valid = ", ".join(sorted(cls.params)) or "(none)"
            raise BadInputError(
                f"strategy {cls.name or cls.__name__} has no parameter {', '.join(unknown)}:"
                f" valid parameters are {valid}"
            )
        out = dict(cls.params)
        for key, value in given.items():
            out[key] = _coerce(cls.name or cls.__name__, key, value, cls.params[key])
        return out

    def validate(self) -> None:
        """Check parameter values together (e.g. fast < slow); raise BadInputError."""

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.params.items() if not isinstance(v, pd.Series | np.ndarray)}
        args = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"{type(self).__name__}({args})"

    # --- hooks --------------------------------------------------------------------------

    def on_start(self, data: pd.DataFrame) -> None:
        """Called once before the first bar (compute causal indicators here)."""

    def on_bar(self, ctx: BarContext) -> float | None:
        """Decide at the close of bar ``ctx.i``; return a target position or place orders."""
        raise NotImplementedError(
            f"strategy {self.name or type(self).__name__} has no on_bar: the event engine needs"
            " it; use the vectorized engine or implement on_bar"
        )

    def on_finish(self) -> None:
        """Called once after the last bar."""

    def signals(self, data: pd.DataFrame) -> pd.Series:
        """Target position per bar (decision at each bar's close), for the vectorized engine."""
        raise NotImplementedError(
            f"strategy {self.name or type(self).__name__} has no vectorized signals: run it with"
            " the event engine"
        )

    @classmethod
    def has_signals(cls) -> bool:
        return cls.signals is not BaseStrategy.signals

    @classmethod
    def has_on_bar(cls) -> bool:
        return cls.on_bar is not BaseStrategy.on_bar

    # --- indicators shared across instances (parameter sweeps) --------------------------

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, memoized in ``self.cache`` when a sweep set one shared cache for
        many parameter sets on the same data (otherwise nothing is kept between runs)."""
        if self.cache is None:
            return compute()
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    # --- orders (event engine) ----------------------------------------------------------

    def _require_broker(self) -> Broker:
        if self._broker is None:
            raise BadInputError(
                "orders can only be placed while the event engine runs the strategy (in on_bar)"
            )
        return self._broker

    def order_target(
        self, target: float, limit: float | None = None, stop: float | None = None
    ) -> None:
        """Ask for a target position (+1 long, -1 short, 0 flat, fractions scale the size);
        ``limit`` or ``stop`` make it a limit or stop order at that price."""
        self._require_broker().submit(target, limit, stop)

    def buy(self, size: float = 1.0, limit: float | None = None, stop: float | None = None) -> None:
        """Go long ``size`` (a target, scaled by the sizing rule)."""
        self.order_target(abs(size), limit, stop)

    def sell(
        self, size: float = 1.0, limit: float | None = None, stop: float | None = None
    ) -> None:
        """Go short ``size`` (a target, scaled by the sizing rule)."""
        self.order_target(-abs(size), limit, stop)

    def close(self, limit: float | None = None, stop: float | None = None) -> None:
        """Go flat."""
        self.order_target(0.0, limit, stop)

    def cancel(self) -> None:
        """Cancel the pending order, if any."""
        self._require_broker().cancel()

    @property
    def position(self) -> float:
        """Units held now (signed)."""
        return self._require_broker().position


def _coerce(strategy: str, key: str, value: Any, default: Any) -> Any:
    """Give ``value`` the type of the default (CLI values arrive as strings)."""
    if default is None or value is None:
        return value
    kind = type(default)
    try:
        if kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(value)
                return lowered in {"true", "1", "yes"}
            return bool(value)
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        if kind is float:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
        if kind is str:
            return str(value)
    except (TypeError, ValueError):
        raise BadInputError(
            f"strategy {strategy}: parameter {key}={value!r} is not a valid {kind.__name__}"
            f" (default {default!r})"
        ) from None
    return value


#: The public name (``cryptoai.Strategy``); ``BaseStrategy`` stays for existing code.
Strategy = BaseStrategy
