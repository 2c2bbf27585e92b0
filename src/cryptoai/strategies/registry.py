"""Strategies found by name: ``@register_strategy("name")`` on a `BaseStrategy` subclass.

The built-ins register from their own files on the first lookup; user strategies register the
same way from a plugin module (``--plugins PATH``, ``plugins:`` in a config, or the
``cryptoai.plugins`` entry-point group; see `cryptoai.plugins`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from cryptoai._registry import Registry
from cryptoai.errors import BadInputError
from cryptoai.strategies.base import BaseStrategy

S = TypeVar("S", bound=type[BaseStrategy])

_BUILTINS = (
    "cryptoai.strategies.bollinger_reversion",
    "cryptoai.strategies.buy_and_hold",
    "cryptoai.strategies.ema_cross",
    "cryptoai.strategies.model_signal",
    "cryptoai.strategies.rsi_reversion",
)


def _check(name: str, cls: object) -> None:
    if not (isinstance(cls, type) and issubclass(cls, BaseStrategy)):
        raise TypeError(f"@register_strategy({name!r}) must decorate a BaseStrategy subclass")


STRATEGIES: Registry[type[BaseStrategy]] = Registry("strategy", _BUILTINS, check=_check)


def register_strategy(name: str) -> Callable[[S], S]:
    """Class decorator: make the strategy available to ``get_strategy(name)`` and the CLI."""

    def deco(cls: S) -> S:
        STRATEGIES.add(name, cls)
        cls.name = STRATEGIES.normalize(name)
        return cls

    return deco


def list_strategies() -> list[str]:
    """Names of all registered strategies, sorted."""
    return STRATEGIES.names()


def get_strategy(name: str) -> type[BaseStrategy]:
    """The strategy class registered as ``name``; unknown names list the valid ones."""
    return STRATEGIES.get(name)


def make_strategy(
    strategy: str | type[BaseStrategy] | BaseStrategy, params: dict[str, Any] | None = None
) -> BaseStrategy:
    """An instance from a name, a class or an instance (params only with a name or class)."""
    if isinstance(strategy, BaseStrategy):
        if params:
            raise BadInputError("pass parameters to the strategy's constructor, not again here")
        return strategy
    cls = get_strategy(strategy) if isinstance(strategy, str) else strategy
    if not (isinstance(cls, type) and issubclass(cls, BaseStrategy)):
        raise BadInputError(
            f"{strategy!r} is not a strategy: give a name, a BaseStrategy class or instance"
        )
    return cls(**(params or {}))
