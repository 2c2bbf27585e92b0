"""The interface every candle source implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

#: What to do with a candle that breaks the contract after its page was asked again:
#: ``fail`` stops the fetch (nothing of that page is stored), ``skip`` leaves it missing.
BAD_CANDLE_POLICIES = ("fail", "skip")


@dataclass(frozen=True)
class Unconfirmed:
    """A span of ``[start, end)`` the source could not vouch for (no bars came back and it
    could not confirm that the exchange has none there, e.g. the newest bars not published
    yet). The fetcher leaves it missing, so a later run asks again."""

    start: pd.Timestamp
    end: pd.Timestamp
    reason: str = "no bars came back and none after them"


class Source(ABC):
    """A place candles come from (an exchange, an API, a file, a generator).

    ``fetch`` yields OHLCV frames (see ``cryptoai.data.frame``) in time order covering
    ``[start, end)``. Yielding page by page lets the store persist each page as it
    arrives, so an interrupted fetch keeps what it got and resumes from there. Finishing
    normally vouches for the whole range: bars absent there are holes the source confirmed,
    except for the spans it yields as `Unconfirmed`.
    """

    #: Name of the store folder the candles are kept under (``data/raw/{exchange}``).
    exchange: str
    #: See ``BAD_CANDLE_POLICIES``; a source in ``skip`` mode hands a page that stayed bad
    #: to the fetcher as it is (bad candles included), and the fetcher drops those.
    on_bad_candle: str = "fail"

    @abstractmethod
    def resolve_symbol(self, symbol: str) -> str:
        """Canonical ``BASE/QUOTE`` form of a user symbol; raises BadInputError if unknown."""

    @abstractmethod
    def fetch(
        self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> Iterator[pd.DataFrame | Unconfirmed]:
        """Yield OHLCV pages for ``[start, end)`` in time order (symbol already resolved)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release network sessions or files."""
