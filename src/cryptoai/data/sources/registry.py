"""The candle sources by name: ``SOURCES``, filled by ``@register_source`` in each source's file.

A registered entry is a factory taking keyword options (``exchange``, ``api_url``, ``path``,
``timeframe``, ``seed``, ``retry``, ``on_bad_candle``) and returning a `Source`; it accepts
only the options that apply to it. The built-in modules are imported on the first lookup,
and none of them imports a network library at import time.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptoai._registry import Registry

SourceFactory = Callable[..., object]

SOURCES: Registry[SourceFactory] = Registry(
    "source",
    builtins=[
        "cryptoai.data.sources.synthetic",
        "cryptoai.data.sources.csv_source",
        "cryptoai.data.sources.coingecko",
        "cryptoai.data.sources.ccxt_source",
    ],
)


def register_source(name: str) -> Callable[[SourceFactory], SourceFactory]:
    """Decorator: ``@register_source("myexchange")`` on a factory ``(**options) -> Source``."""
    return SOURCES.register(name)


__all__ = ["SOURCES", "SourceFactory", "register_source"]
