"""Trading strategies: `BaseStrategy`, the name registry and the built-ins."""

from cryptoai.strategies.base import BarContext, BaseStrategy, Strategy
from cryptoai.strategies.lookahead import LookaheadReport, check_lookahead
from cryptoai.strategies.registry import (
    get_strategy,
    list_strategies,
    make_strategy,
    register_strategy,
)

__all__ = [
    "BarContext",
    "BaseStrategy",
    "LookaheadReport",
    "Strategy",
    "check_lookahead",
    "get_strategy",
    "list_strategies",
    "make_strategy",
    "register_strategy",
]
