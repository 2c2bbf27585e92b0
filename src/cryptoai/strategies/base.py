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
import numbers
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError


class Broker(Protocol):
    """What a strategy sees of the event engine's account (``cryptoai.backtest.event.Broker``
    implements it); declared here so strategies do not import the engine that runs them."""

    @property
    def position(self) -> float: ...

    @property
    def cash(self) -> float: ...

    def equity_at(self, price: float) -> float: ...

    def submit(
        self, target: float, limit: float | None = None, stop: float | None = None
    ) -> None: ...

    def cancel(self) -> None: ...


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


_INVALID = object()  # _parse: the value is not of the declared kind
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _kind(default: Any) -> str | None:
    """The type a parameter's default declares (``None``: untyped, the strategy checks it)."""
    if isinstance(default, bool | np.bool_):
        return "bool"
    if isinstance(default, numbers.Integral):
        return "int"
    if isinstance(default, numbers.Real):
        return "float"
    if isinstance(default, str):
        return "str"
    return None


def _coerce(strategy: str, key: str, value: Any, default: Any) -> Any:
    """``value`` as the type of the parameter's default, or a one-line error.

    Strings are parsed (CLI values and sweeps written as text arrive as strings); otherwise
    the value must already be of the declared kind: a boolean is not an integer (``True``
    for a span was silently 1), an integer is not a boolean beyond 0 and 1, an int parameter
    takes whole numbers only, a float one takes ints, and an empty value or ``None`` is
    never a number. A default of ``None`` (or a non-scalar one) declares no type: the value
    passes through to the strategy's own ``validate``.
    """
    kind = _kind(default)
    if kind is None:
        return value
    parsed = _parse(kind, value)
    if parsed is _INVALID:
        article = "an" if kind == "int" else "a"
        shown = "an empty value" if isinstance(value, str) and not value.strip() else repr(value)
        raise BadInputError(
            f"strategy {strategy}: parameter {key} got {shown}, expected {article} {kind}"
            f" (default {default!r})"
        )
    return parsed


def _parse(kind: str, value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return _INVALID
        if kind == "str":
            return value
        if kind == "bool":
            lowered = text.lower()
            return True if lowered in _TRUE else False if lowered in _FALSE else _INVALID
        try:
            number = float(text)
        except ValueError:
            return _INVALID
        return _parse(kind, int(text) if kind == "int" and _is_int_literal(text) else number)
    if kind == "str":
        return _INVALID
    if isinstance(value, bool | np.bool_):
        return bool(value) if kind == "bool" else _INVALID
    if kind == "bool":
        if isinstance(value, numbers.Integral) and int(value) in (0, 1):
            return bool(value)
        return _INVALID
    if isinstance(value, numbers.Integral):
        return int(value) if kind == "int" else float(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            return _INVALID
        if kind == "int":
            return int(number) if number.is_integer() else _INVALID
        return number
    return _INVALID


def _is_int_literal(text: str) -> bool:
    digits = text[1:] if text[:1] in "+-" else text
    return digits.isdigit()


#: The public name (``cryptoai.Strategy``); ``BaseStrategy`` stays for existing code.
Strategy = BaseStrategy
