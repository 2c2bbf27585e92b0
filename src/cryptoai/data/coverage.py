"""What the raw store holds: one DuckDB pass over every day file, summarised per series.

A series is measured over everything ever requested for it (the manifest's ``requested``
and ``covered`` ranges) as well as between its first and last stored bar, so bars absent
at the start or end of a requested range show as holes too. A hole is ``confirmed`` when it
lies inside a range the source finished (the exchange has no bars there), else it is still
to be fetched (an interrupted fetch, a span the source could not confirm, refused candles).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cryptoai.data.manifest import MANIFEST_NAME, Manifest
from cryptoai.data.symbols import from_path
from cryptoai.data.timeframes import timeframe_to_timedelta
from cryptoai.errors import BadInputError, DataValidationError

COVERAGE_COLUMNS: tuple[str, ...] = (
    "exchange",
    "symbol",
    "timeframe",
    "start",
    "end",
    "first",
    "last",
    "bars",
    "missing",
    "holes",
    "complete",
    "gaps",
    "largest_gap",
)
#: One hole: ``(first missing bar, end, bars, confirmed)``, half-open.
Hole = tuple[pd.Timestamp, pd.Timestamp, int, bool]

# Per series: first/last bar, bars, grid bars absent between first and last, and the gaps
# (steps longer than one bar between consecutive bars): how many and the longest.
_QUERY = """
WITH bars AS (
    SELECT
        list_extract(string_split(replace(filename, '\\', '/'), '/'), -4) AS exchange,
        list_extract(string_split(replace(filename, '\\', '/'), '/'), -3) AS symbol,
        list_extract(string_split(replace(filename, '\\', '/'), '/'), -2) AS timeframe,
        epoch_us(CAST("timestamp" AS TIMESTAMPTZ)) AS ts
    FROM read_parquet(?, filename = true, hive_partitioning = false)
),
steps AS (
    SELECT b.exchange, b.symbol, b.timeframe, b.ts, t.bar_us,
           b.ts - lag(b.ts) OVER (PARTITION BY b.exchange, b.symbol, b.timeframe ORDER BY b.ts)
               AS step
    FROM bars b JOIN timeframes t USING (timeframe)
)
SELECT exchange, symbol, timeframe,
       min(ts) AS first_us,
       max(ts) AS last_us,
       count(*) AS bars,
       (max(ts) - min(ts)) // any_value(bar_us) + 1 - count(*) AS missing,
       count(*) FILTER (WHERE step > bar_us) AS gaps,
       coalesce(max(CASE WHEN step > bar_us THEN step - bar_us END), 0) AS largest_gap_us
FROM steps
GROUP BY exchange, symbol, timeframe
ORDER BY exchange, symbol, timeframe
"""

_GAPS = (
    _QUERY[: _QUERY.index("SELECT exchange, symbol, timeframe,\n       min(ts)")]
    + """
SELECT exchange, symbol, timeframe, ts - step AS prev_us, ts AS next_us
FROM steps
WHERE step > bar_us
ORDER BY exchange, symbol, timeframe, ts
"""
)


def coverage(root: str | Path = "data/raw") -> pd.DataFrame:
    """Per exchange/symbol/timeframe: the requested span (``start``, ``end``), first/last
    bar, bars, missing bars, the holes, gaps between bars and the largest gap.

    ``missing`` counts grid bars absent in ``[start, end)``: between the first and last bar
    and, where the manifest records a wider requested range, before and after them.
    ``holes`` lists each run of absent bars as ``(start, end, bars, confirmed)``;
    ``complete`` is true only when there is none. ``gaps``/``largest_gap`` count the steps
    between consecutive stored bars (0 / no gap when there is none).
    """
    import duckdb

    root = Path(root)
    files = sorted(str(p) for p in root.glob("*/*/*/*.parquet")) if root.is_dir() else []
    if not files:
        return _empty()
    timeframes = sorted({Path(f).parent.name for f in files})
    try:
        bar_us = [timeframe_to_timedelta(tf) // pd.Timedelta(microseconds=1) for tf in timeframes]
    except BadInputError as exc:
        raise DataValidationError(f"{root} holds a folder that is not a timeframe: {exc}") from exc
    tf_table = pd.DataFrame({"timeframe": timeframes, "bar_us": bar_us})
    con = duckdb.connect()
    try:
        con.register("timeframes", tf_table)
        raw = con.execute(_QUERY, [files]).df()
        gap_rows = con.execute(_GAPS, [files]).df()
    except duckdb.Error as exc:
        raise DataValidationError(
            f"cannot summarise the store at {root} ({str(exc).splitlines()[0]}): find the damaged"
            " files with cryptoai validate, then fix them with cryptoai repair"
        ) from exc
    finally:
        con.close()
    out = pd.DataFrame(
        {
            "exchange": raw["exchange"].astype(str),
            "symbol": [_symbol(s) for s in raw["symbol"]],
            "timeframe": raw["timeframe"].astype(str),
            "first": pd.to_datetime(raw["first_us"].astype("int64"), unit="us", utc=True),
            "last": pd.to_datetime(raw["last_us"].astype("int64"), unit="us", utc=True),
            "bars": raw["bars"].astype("int64"),
            "missing": raw["missing"].astype("int64"),
            "gaps": raw["gaps"].astype("int64"),
            "largest_gap": pd.to_timedelta(raw["largest_gap_us"].astype("int64"), unit="us"),
        }
    )
    gaps: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    for row in gap_rows.itertuples(index=False):
        gaps.setdefault((row.exchange, row.symbol, row.timeframe), []).append(
            (int(row.prev_us), int(row.next_us))
        )
    starts, ends, holes = [], [], []
    for i, row in enumerate(raw.itertuples(index=False)):
        folder = root / row.exchange / row.symbol / row.timeframe
        td = pd.Timedelta(microseconds=int(tf_table.set_index("timeframe").bar_us[row.timeframe]))
        s, e, h = _holes(
            folder,
            out["first"].iloc[i],
            out["last"].iloc[i],
            td,
            gaps.get((row.exchange, row.symbol, row.timeframe), []),
        )
        starts.append(s)
        ends.append(e)
        holes.append(h)
    out["start"] = pd.DatetimeIndex(starts).as_unit(out["first"].dt.unit)
    out["end"] = pd.DatetimeIndex(ends).as_unit(out["first"].dt.unit)
    out["holes"] = holes
    out["missing"] = [sum(h[2] for h in hs) for hs in holes]
    out["complete"] = [not hs for hs in holes]
    return out[list(COVERAGE_COLUMNS)].reset_index(drop=True)


def _holes(
    folder: Path,
    first: pd.Timestamp,
    last: pd.Timestamp,
    td: pd.Timedelta,
    gaps_us: list[tuple[int, int]],
) -> tuple[pd.Timestamp, pd.Timestamp, list[Hole]]:
    """The requested span of one series and its holes, each marked confirmed or not."""
    manifest = _manifest(folder)
    requested = [*manifest.requested, *manifest.covered] if manifest else []
    covered = manifest.covered if manifest else []
    first, last = first.as_unit("ns"), last.as_unit("ns")
    start = min([first, *(s for s, _ in requested)])
    end = max([last + td, *(e for _, e in requested)])
    spans = []
    if start < first:
        spans.append((_ceil(start, first, td), first))
    for prev_us, next_us in gaps_us:
        a = pd.Timestamp(prev_us * 1000, tz="UTC") + td
        spans.append((a, pd.Timestamp(next_us * 1000, tz="UTC")))
    if end > last + td:
        spans.append((last + td, end))
    holes: list[Hole] = []
    for a, b in spans:
        bars = int(-(-(b - a) // td))
        if bars <= 0:
            continue
        confirmed = any(cs <= a and b <= ce for cs, ce in covered)
        holes.append((a, b, bars, confirmed))
    return start, end, holes


def _ceil(start: pd.Timestamp, first: pd.Timestamp, td: pd.Timedelta) -> pd.Timestamp:
    """The first grid bar at or after ``start`` (on the grid of ``first``)."""
    return first - ((first - start) // td) * td


def _manifest(folder: Path) -> Manifest | None:
    path = folder / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return Manifest.from_json(text, where=str(path))


def format_coverage(df: pd.DataFrame) -> str:
    """Aligned text table of ``coverage()`` for the terminal (see `format_holes` for spans)."""
    if df.empty:
        return "the store is empty: fetch some candles first (cryptoai fetch ...)"
    shown = df.copy()
    for col in ("start", "end", "first", "last"):
        shown[col] = shown[col].dt.strftime("%Y-%m-%d %H:%M")
    shown["holes"] = [len(h) for h in shown["holes"]]
    shown["complete"] = ["yes" if c else "no" for c in shown["complete"]]
    shown["largest_gap"] = [_duration(td) for td in shown["largest_gap"]]
    return shown.to_string(index=False)


def format_holes(df: pd.DataFrame, limit: int = 20) -> str:
    """One line per hole (at most ``limit`` per series): its span, bars, and whether the
    source confirmed it; empty when every series is complete."""
    lines = []
    for row in df.itertuples(index=False):
        name = f"{row.exchange}/{row.symbol}/{row.timeframe}"
        for a, b, bars, confirmed in row.holes[:limit]:
            status = (
                "confirmed by the source (no bars there)"
                if confirmed
                else "not fetched or not confirmed: re-run cryptoai fetch for it"
            )
            lines.append(
                f"hole {name} [{a:%Y-%m-%d %H:%M}, {b:%Y-%m-%d %H:%M}): {bars} bars, {status}"
            )
        if len(row.holes) > limit:
            lines.append(f"hole {name}: ... and {len(row.holes) - limit} more")
    return "\n".join(lines)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "exchange": pd.Series(dtype=str),
            "symbol": pd.Series(dtype=str),
            "timeframe": pd.Series(dtype=str),
            "start": pd.Series(dtype="datetime64[us, UTC]"),
            "end": pd.Series(dtype="datetime64[us, UTC]"),
            "first": pd.Series(dtype="datetime64[us, UTC]"),
            "last": pd.Series(dtype="datetime64[us, UTC]"),
            "bars": pd.Series(dtype="int64"),
            "missing": pd.Series(dtype="int64"),
            "holes": pd.Series(dtype=object),
            "complete": pd.Series(dtype=bool),
            "gaps": pd.Series(dtype="int64"),
            "largest_gap": pd.Series(dtype="timedelta64[us]"),
        }
    )


def _symbol(folder: str) -> str:
    try:
        return from_path(folder)
    except BadInputError:
        return folder


def _duration(td: pd.Timedelta) -> str:
    """``2d 4h``, ``45m``, ``-`` for no gap: short and readable in a table."""
    if td <= pd.Timedelta(0):
        return "-"
    parts = []
    days, rest = divmod(int(td.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")):
        if n:
            parts.append(f"{n}{unit}")
    return " ".join(parts)
