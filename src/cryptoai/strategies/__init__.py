"""Trading strategies: `BaseStrategy`, the name registry and the built-ins."""

from cryptoai.strategies.base import BarContext, BaseStrategy, Strategy
from cryptoai.strategies.registry import (
    get_strategy,
    list_strategies,
    make_strategy,
    register_strategy,
)

__all__ = [
    "BarContext",
    "BaseStrategy",
    "Strategy",
    "get_strategy",
    "list_strategies",
    "make_strategy",
    "register_strategy",
]
