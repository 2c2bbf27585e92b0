"""The per-series manifest of the raw store (``{series_dir}/_manifest.json``).

It records, for every day file, the checksum, size, row count and first/last bar, so damage
is detectable (and every read checks it); the time ranges that were *fully* fetched
("covered": bars absent there are holes the source confirmed), so such a hole is not
re-requested forever while an interrupted fetch is resumed; and the ranges ever requested,
so `coverage` can show holes at the start or end of a series, not only between its bars. This module only models and (de)serializes it; the store does the file I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pandas as pd

from cryptoai.errors import DataValidationError

MANIFEST_NAME = "_manifest.json"
FORMAT_VERSION = 1
_DAY_FILE = re.compile(r"\d{4}-\d{2}-\d{2}\.parquet")

Interval = tuple[pd.Timestamp, pd.Timestamp]


@dataclass(frozen=True)
class FileEntry:
    """What one day file held when it was written."""

    sha256: str
    rows: int
    first: pd.Timestamp
    last: pd.Timestamp
    size: int


@dataclass
class Manifest:
    """Everything the store knows about one exchange/symbol/timeframe series."""

    exchange: str
    symbol: str
    timeframe: str
    columns: list[str] = field(default_factory=list)
    files: dict[str, FileEntry] = field(default_factory=dict)
    covered: list[Interval] = field(default_factory=list)
    requested: list[Interval] = field(default_factory=list)

    def to_json(self) -> str:
        doc = {
            "format": FORMAT_VERSION,
            "exchange": self.exchange,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "columns": list(self.columns),
            "files": {
                name: {
                    "sha256": e.sha256,
                    "rows": e.rows,
                    "first": _iso(e.first),
                    "last": _iso(e.last),
                    "size": e.size,
                }
                for name, e in sorted(self.files.items())
            },
            "covered": [[_iso(s), _iso(e)] for s, e in self.covered],
            "requested": [[_iso(s), _iso(e)] for s, e in self.requested],
        }
        return json.dumps(doc, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "manifest") -> Manifest:
        """Parse a manifest; a damaged one is reported, never silently replaced."""
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT_VERSION:
                raise ValueError(f"unsupported format {doc.get('format')!r}")
            bad = [n for n in doc["files"] if not _DAY_FILE.fullmatch(n)]
            if bad:
                raise ValueError(f"{bad[0]!r} is not a day file name")
            files = {
                name: FileEntry(
                    sha256=str(e["sha256"]),
                    rows=int(e["rows"]),
                    first=_ts(e["first"]),
                    last=_ts(e["last"]),
                    size=int(e["size"]),
                )
                for name, e in doc["files"].items()
            }
            covered = [(_ts(s), _ts(e)) for s, e in doc["covered"]]
            requested = [(_ts(s), _ts(e)) for s, e in doc.get("requested", [])]
            return cls(
                exchange=str(doc["exchange"]),
                symbol=str(doc["symbol"]),
                timeframe=str(doc["timeframe"]),
                columns=[str(c) for c in doc["columns"]],
                files=files,
                covered=merge_intervals(covered),
                requested=merge_intervals(requested),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataValidationError(
                f"{where} is unreadable ({exc}): rebuild it from the day files that verify with"
                " cryptoai repair (same options as the fetch)"
            ) from exc


def merge_intervals(intervals: list[Interval]) -> list[Interval]:
    """Sorted union of ``[start, end)`` intervals; touching intervals are joined."""
    out: list[Interval] = []
    for s, e in sorted(i for i in intervals if i[1] > i[0]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def subtract_interval(intervals: list[Interval], cut: Interval) -> list[Interval]:
    """``intervals`` without ``[cut)``: what stays covered once a span must be fetched again."""
    out: list[Interval] = []
    c0, c1 = cut
    for s, e in intervals:
        if e <= c0 or s >= c1:
            out.append((s, e))
            continue
        if s < c0:
            out.append((s, c0))
        if e > c1:
            out.append((c1, e))
    return out


def _iso(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").isoformat()


def _ts(value: str) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return ts.tz_convert("UTC").as_unit("ns")
