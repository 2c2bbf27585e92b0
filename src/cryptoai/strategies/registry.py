"""Strategies found by name: ``@register_strategy("name")`` on a `BaseStrategy` subclass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from cryptoai.errors import BadInputError
from cryptoai.strategies.base import BaseStrategy

S = TypeVar("S", bound=type[BaseStrategy])

_REGISTRY: dict[str, type[BaseStrategy]] = {}


def register_strategy(name: str) -> Callable[[S], S]:
    """Class decorator: make the strategy available to ``get_strategy(name)`` and the CLI."""

    def deco(cls: S) -> S:
        if not (isinstance(cls, type) and issubclass(cls, BaseStrategy)):
            raise TypeError(f"@register_strategy({name!r}) must decorate a BaseStrategy subclass")
        existing = _REGISTRY.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"strategy name {name!r} is already used by {existing.__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_builtins() -> None:
    import cryptoai.strategies.builtin  # noqa: F401 - registers the built-in strategies


def list_strategies() -> list[str]:
    """Names of all registered strategies, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_strategy(name: str) -> type[BaseStrategy]:
    """The strategy class registered as ``name``; unknown names list the valid ones."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise BadInputError(
            f"unknown strategy {name!r}: choose one of {', '.join(sorted(_REGISTRY))}"
        ) from None


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
