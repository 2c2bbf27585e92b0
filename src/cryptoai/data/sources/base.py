"""The interface every candle source implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import pandas as pd


class Source(ABC):
    """A place candles come from (an exchange, an API, a file, a generator).

    ``fetch`` yields OHLCV frames (see ``cryptoai.data.frame``) in time order covering
    ``[start, end)``. Yielding page by page lets the store persist each page as it
    arrives, so an interrupted fetch keeps what it got and resumes from there.
    """

    #: Name of the store folder the candles are kept under (``data/raw/{exchange}``).
    exchange: str

    @abstractmethod
    def resolve_symbol(self, symbol: str) -> str:
        """Canonical ``BASE/QUOTE`` form of a user symbol; raises BadInputError if unknown."""

    @abstractmethod
    def fetch(
        self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> Iterator[pd.DataFrame]:
        """Yield OHLCV pages for ``[start, end)`` in time order (symbol already resolved)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release network sessions or files."""
