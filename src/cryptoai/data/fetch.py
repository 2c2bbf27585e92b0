"""Incremental fetch: ask a source only for the bars the store lacks, storing page by page.

The whole fetch holds the series' writer lock, so a second fetch of the same series waits
and then asks only for what is still missing. Each page is checked (``check_page``: on the
grid, the OHLCV contract, no conflicting repeats) and written (atomically) the moment it
arrives; a range is marked covered only once the source finished it, and without the spans
the source could not confirm or the candles refused, so an interruption loses at most the
page in flight, the next run resumes there, and only a hole the source confirmed is never
asked for again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from cryptoai._progress import tqdm
from cryptoai.data.manifest import Interval, subtract_interval
from cryptoai.data.sources.base import BAD_CANDLE_POLICIES, Source, Unconfirmed
from cryptoai.data.store import RawStore, SeriesKey, TimeLike
from cryptoai.data.timeframes import (
    bar_grid,
    floor_to_bar,
    parse_range,
    parse_utc,
    timeframe_to_timedelta,
)
from cryptoai.data.validate import check_page
from cryptoai.errors import BadInputError, DataValidationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchReport:
    """What one ``fetch_to_store`` call did.

    ``requested`` is the range after clipping its end to the last closed bar;
    ``already_present`` counts grid bars there that were stored or known gaps beforehand;
    ``bars_skipped`` the bad candles left missing (``on_bad_candle="skip"``);
    ``unconfirmed`` the spans the source sent nothing for and could not confirm as holes.
    """

    series: SeriesKey
    requested: tuple[pd.Timestamp, pd.Timestamp]
    bars_written: int = 0
    ranges_fetched: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)
    already_present: int = 0
    bars_skipped: int = 0
    unconfirmed: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)

    def __str__(self) -> str:
        s, e = self.requested
        text = (
            f"{self.series} [{s:%Y-%m-%d %H:%M}, {e:%Y-%m-%d %H:%M}): {self.bars_written} bars"
            f" written in {len(self.ranges_fetched)} range(s), {self.already_present} already present"
        )
        if self.bars_skipped:
            text += f"; {self.bars_skipped} bad candles skipped (left missing)"
        if self.unconfirmed:
            a, b = self.unconfirmed[0]
            text += (
                f"; {len(self.unconfirmed)} span(s) unconfirmed by the source, left missing"
                f" (first [{a:%Y-%m-%d %H:%M}, {b:%Y-%m-%d %H:%M})): re-run later"
            )
        return text


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
    on_bad_candle: str | None = None,
    lock_timeout_s: float = 3600,
) -> FetchReport:
    """Fetch what ``store`` lacks of ``[start, end)`` from ``source`` (which the caller closes).

    ``end`` is clipped to the last fully closed bar as of ``now`` (default: the clock), so
    an in-progress candle is never stored. Source errors propagate unchanged, after every
    page received so far has been stored. A page with a candle that breaks the contract
    stops the fetch with nothing of that page stored (``on_bad_candle="fail"``, default: the
    source's setting) or has its bad candles dropped and left missing (``"skip"``).
    """
    td = timeframe_to_timedelta(timeframe)  # bad input fails before any network call
    policy = on_bad_candle or getattr(source, "on_bad_candle", "fail")
    if policy not in BAD_CANDLE_POLICIES:
        raise BadInputError(
            f"--on-bad-candle {policy!r}: choose one of {', '.join(BAD_CANDLE_POLICIES)}"
        )
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
    with store.lock(*key, timeout_s=lock_timeout_s):
        ranges = store.missing_ranges(key.exchange, key.symbol, key.timeframe, first, stop)
        to_fetch = sum(int((e - s) / td) for s, e in ranges)
        written = skipped = 0
        unconfirmed: list[Interval] = []
        disable = True if not progress else None
        with tqdm(total=to_fetch, unit="bar", desc=str(key), disable=disable) as bar:
            for rs, re in ranges:
                covered: list[Interval] = [(rs, re)]
                for item in source.fetch(key.symbol, key.timeframe, rs, re):
                    if isinstance(item, Unconfirmed):
                        span = (max(item.start, rs), min(item.end, re))
                        if span[0] < span[1]:
                            log.warning("%s: [%s, %s) left missing: %s", key, *span, item.reason)
                            unconfirmed.append(span)
                            covered = subtract_interval(covered, span)
                        continue
                    keep, bad = _checked(item, key, rs, re, policy, source)
                    for ts in bad:
                        covered = subtract_interval(covered, (ts, ts + td))
                    skipped += len(bad)
                    if keep.empty:
                        continue
                    store.write(key.exchange, key.symbol, key.timeframe, keep)
                    written += len(keep)
                    bar.update(len(keep))
                store.record_fetch(key.exchange, key.symbol, key.timeframe, (rs, re), covered)
    report = FetchReport(
        series=key,
        requested=(first, stop),
        bars_written=written,
        ranges_fetched=list(ranges),
        already_present=expected - to_fetch,
        bars_skipped=skipped,
        unconfirmed=unconfirmed,
    )
    log.debug("%s", report)  # the caller shows it (the CLI prints it once)
    return report


def _checked(
    page: pd.DataFrame,
    key: SeriesKey,
    start: pd.Timestamp,
    end: pd.Timestamp,
    policy: str,
    source: Source,
) -> tuple[pd.DataFrame, list[pd.Timestamp]]:
    """The storable part of a page and the open times refused (only in ``skip`` mode)."""
    checked = check_page(page, key.timeframe, start, end)
    if checked.outside:
        log.debug("%s: %d bars outside [%s, %s) dropped", key, checked.outside, start, end)
    if checked.ok:
        return checked.clean, []
    if policy == "fail":
        raise DataValidationError(
            f"{source.exchange} sent a bad candle for {key}, {checked.first_problem()}: nothing"
            " of that page was stored and its range stays missing; re-run to fetch it again,"
            " or pass --on-bad-candle skip to store the good candles and leave the bad ones"
            " missing"
        )
    log.warning(
        "%s: %d bad candle(s) skipped, left missing (%s)",
        key,
        len(checked.bad),
        checked.first_problem(),
    )
    return checked.clean, list(checked.bad)


def _current_bar_open(now: pd.Timestamp, timeframe: str) -> pd.Timestamp:
    """Open time of the bar in progress at ``now`` (on the same grid as ``bar_grid``)."""
    return floor_to_bar(now, timeframe)
