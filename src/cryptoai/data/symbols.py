"""Symbol spellings: ``BTC/USDT`` (canonical), ``BTCUSDT`` (exchange id), ``BTC-USDT`` (paths)."""

from __future__ import annotations

import re

from cryptoai.errors import BadInputError

_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "BTC", "ETH", "BNB")
_PATH_RE = re.compile(r"^[A-Z0-9]+-[A-Z0-9]+$")


def canonical(symbol: str) -> str:
    """``btc-usdt`` / ``BTC/USDT`` / ``BTCUSDT`` -> ``BTC/USDT`` (offline guess by known quotes)."""
    s = symbol.strip().upper().replace("-", "/").replace("_", "/")
    if "/" in s:
        base, _, quote = s.partition("/")
        if base and quote and "/" not in quote:
            return f"{base}/{quote}"
    else:
        for q in _QUOTES:
            if s.endswith(q) and len(s) > len(q):
                return f"{s[: -len(q)]}/{q}"
    raise BadInputError(
        f"cannot read symbol {symbol!r}: write it as BASE/QUOTE, e.g. BTC/USDT (or BTCUSDT)"
    )


def path_safe(symbol: str) -> str:
    """``BTC/USDT`` -> ``BTC-USDT`` for folder names."""
    return canonical(symbol).replace("/", "-")


def from_path(name: str) -> str:
    """``BTC-USDT`` -> ``BTC/USDT``."""
    if not _PATH_RE.match(name):
        raise BadInputError(f"{name!r} is not a store symbol folder (expected e.g. BTC-USDT)")
    return name.replace("-", "/")
