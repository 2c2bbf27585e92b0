"""Incremental fetch: ask a source only for the bars the store lacks, storing page by page.

Each page is written (atomically) the moment it arrives and a range is marked covered only
once the source finished it, so an interruption loses at most the page in flight and the
next run resumes there, while a gap the exchange never filled is asked for only once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd
from tqdm.auto import tqdm

from cryptoai.data.sources.base import Source
from cryptoai.data.store import RawStore, SeriesKey, TimeLike
from cryptoai.data.timeframes import (
    bar_grid,
    floor_to_bar,
    parse_range,
    parse_utc,
    timeframe_to_timedelta,
)
from cryptoai.errors import BadInputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchReport:
    """What one ``fetch_to_store`` call did.

    ``requested`` is the range after clipping its end to the last closed bar;
    ``already_present`` counts grid bars there that were stored or known gaps beforehand.
    """

    series: SeriesKey
    requested: tuple[pd.Timestamp, pd.Timestamp]
    bars_written: int = 0
    ranges_fetched: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)
    already_present: int = 0

    def __str__(self) -> str:
        s, e = self.requested
        return (
            f"{self.series} [{s:%Y-%m-%d %H:%M}, {e:%Y-%m-%d %H:%M}): {self.bars_written} bars"
            f" written in {len(self.ranges_fetched)} range(s), {self.already_present} already present"
        )


def fetch_to_store(
    source: Source,
    store: RawStore,
    symbol: str,
    timeframe: str,
    start: TimeLike,
    end: TimeLike | None,
    *,
    progress: bool = True,
    now: TimeLike | None = None,
) -> FetchReport:
    """Fetch what ``store`` lacks of ``[start, end)`` from ``source`` (which the caller closes).

    ``end`` is clipped to the last fully closed bar as of ``now`` (default: the clock), so
    an in-progress candle is never stored. Source errors propagate unchanged, after every
    page received so far has been stored.
    """
    td = timeframe_to_timedelta(timeframe)  # bad input fails before any network call
    clock = parse_utc(now, "now") if now is not None else pd.Timestamp.now(tz="UTC")
    closed_end = _current_bar_open(clock, timeframe)
    if (first := parse_utc(start, "--start")) >= closed_end:
        raise BadInputError(
            f"--start {first:%Y-%m-%d %H:%M} is not before the bar in progress"
            f" ({closed_end:%Y-%m-%d %H:%M} UTC, {timeframe}): only closed bars are stored,"
            " so give an earlier --start"
        )
    first, stop = parse_range(start, end if end is not None else clock)
    stop = min(stop, closed_end)
    key = store.key(source.exchange, source.resolve_symbol(symbol), timeframe)
    expected = len(bar_grid(first, stop, key.timeframe))
    ranges = store.missing_ranges(key.exchange, key.symbol, key.timeframe, first, stop)
    to_fetch = sum(int((e - s) / td) for s, e in ranges)
    written = 0
    bar = tqdm(total=to_fetch, unit="bar", desc=str(key), disable=True if not progress else None)
    with bar:
        for rs, re in ranges:
            for page in source.fetch(key.symbol, key.timeframe, rs, re):
                keep = page[(page.index >= rs) & (page.index < re)]
                if keep.empty:
                    continue
                store.write(key.exchange, key.symbol, key.timeframe, keep)
                written += len(keep)
                bar.update(len(keep))
            store.mark_covered(key.exchange, key.symbol, key.timeframe, rs, re)
    report = FetchReport(
        series=key,
        requested=(first, stop),
        bars_written=written,
        ranges_fetched=list(ranges),
        already_present=expected - to_fetch,
    )
    log.info("%s", report)
    return report


def _current_bar_open(now: pd.Timestamp, timeframe: str) -> pd.Timestamp:
    """Open time of the bar in progress at ``now`` (on the same grid as ``bar_grid``)."""
    return floor_to_bar(now, timeframe)
