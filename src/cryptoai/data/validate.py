"""Checks of the OHLCV contract, and a survey of what is wrong with a frame and where.

``ohlcv_schema()`` is the contract written as a pandera schema. ``validate_ohlcv`` surveys a
frame and reports every problem with the timestamps it sits at (gaps, duplicates, ordering,
OHLC consistency, prices, volume, NaNs, dtypes, timezone); ``check_ohlcv`` turns contract
breaks into one actionable error. Gaps are reported but never fatal: exchanges have outages.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cryptoai.data.frame import EXTRA_COLUMNS, INDEX_NAME, OHLCV_COLUMNS
from cryptoai.data.timeframes import timeframe_to_timedelta
from cryptoai.errors import BadInputError, DataValidationError

log = logging.getLogger(__name__)

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
_UNITS = (("w", 7 * 86_400), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))

Gap = tuple[pd.Timestamp, pd.Timestamp, int]


def _no_stamps() -> pd.DatetimeIndex:
    return pd.DatetimeIndex([], tz="UTC", name=INDEX_NAME)


@functools.cache
def ohlcv_schema():  # -> pandera.pandas.DataFrameSchema (pandera is imported lazily: it is slow)
    """The OHLCV contract as a pandera schema; extra columns are allowed."""
    import pandera.pandas as pa

    def price() -> pa.Column:
        return pa.Column("float64", pa.Check.gt(0), nullable=False)

    def amount(required: bool) -> pa.Column:
        return pa.Column("float64", pa.Check.ge(0), nullable=not required, required=required)

    index = pa.Index(
        checks=[
            pa.Check(
                lambda i: isinstance(i.dtype, pd.DatetimeTZDtype) and str(i.dtype.tz) == "UTC",
                error="index must be tz-aware UTC timestamps",
            ),
            pa.Check(lambda i: i.is_monotonic_increasing, error="timestamps must increase"),
        ],
        unique=True,
    )
    return pa.DataFrameSchema(
        columns={
            **{c: price() for c in PRICE_COLUMNS},
            "volume": amount(required=True),
            **{c: amount(required=False) for c in EXTRA_COLUMNS},
        },
        index=index,
        checks=[
            pa.Check(
                lambda d: d["high"] >= np.maximum(d["open"], d["close"]),
                error="high >= max(open, close)",
            ),
            pa.Check(
                lambda d: d["low"] <= np.minimum(d["open"], d["close"]),
                error="low <= min(open, close)",
            ),
        ],
        strict=False,
        name="OHLCV frame",
    )


@dataclass
class ValidationReport:
    """What a frame looks like and every contract problem, with the timestamps it sits at.

    ``gaps`` are ``(first missing bar, next present bar, bars missing)``, half-open like every
    range in cryptoai. ``ok`` means the contract holds; gaps alone do not make it false.
    """

    n_bars: int
    timeframe: str | None = None
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    expected_bars: int = 0
    missing_bars: int = 0
    gaps: list[Gap] = field(default_factory=list)
    duplicates: pd.DatetimeIndex = field(default_factory=_no_stamps)
    unsorted: pd.DatetimeIndex = field(default_factory=_no_stamps)
    ohlc_violations: pd.DatetimeIndex = field(default_factory=_no_stamps)
    nonpositive_prices: pd.DatetimeIndex = field(default_factory=_no_stamps)
    negative_volume: pd.DatetimeIndex = field(default_factory=_no_stamps)
    nan_rows: pd.DatetimeIndex = field(default_factory=_no_stamps)
    off_grid: pd.DatetimeIndex = field(default_factory=_no_stamps)
    issues: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems()

    @property
    def missing_pct(self) -> float:
        return 100.0 * self.missing_bars / self.expected_bars if self.expected_bars else 0.0

    def problems(self) -> list[str]:
        """One line per contract break, each saying what to do."""
        out = list(self.issues)
        for stamps, what, fix in (
            (self.duplicates, "duplicated timestamps", "keep one row per timestamp"),
            (self.unsorted, "rows out of time order", "sort by timestamp"),
            (self.nan_rows, "candles with missing or infinite values", "fill or drop them"),
            (self.ohlc_violations, "candles whose high/low do not contain open/close",
             "fix or drop them"),
            (self.nonpositive_prices, "candles with prices <= 0", "fix or drop them"),
            (self.negative_volume, "candles with negative volume", "fix or drop them"),
        ):  # fmt: skip
            if len(stamps):
                out.append(f"{len(stamps)} {what} (first at {_fmt(stamps[0])}): {fix}")
        return out

    def summary(self) -> str:
        """A few human lines: coverage, gaps, then any contract break."""
        if self.n_bars == 0:
            head = "no bars"
        else:
            tf = f"{self.timeframe} " if self.timeframe else ""
            head = (
                f"{self.n_bars} {tf}bars {_fmt(self.first)} .. {_fmt(self.last)}, "
                f"{self.missing_bars} missing ({self.missing_pct:.2f}%) in {len(self.gaps)} gaps"
            )
        problems = self.problems()
        status = "contract OK" if not problems else "; ".join(problems)
        return "\n".join([f"{head}; {status}", *self.warnings])


def infer_timeframe(index: pd.Index) -> str | None:
    """Timeframe string of the median bar spacing (``None`` with fewer than two bars)."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return None
    seconds = _median_seconds(index)
    if seconds <= 0:
        return None
    for unit, size in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _median_seconds(index: pd.DatetimeIndex) -> int:
    steps = np.diff(_sorted_unique(index.as_unit("ns").asi8))
    return int(round(float(np.median(steps)) / 1e9)) if len(steps) else 0


def _sorted_unique(ns: np.ndarray) -> np.ndarray:
    """Sorted distinct values; a sort-based path (hash-based ``np.unique`` is slow here)."""
    if len(ns) < 2 or (ns[1:] > ns[:-1]).all():
        return ns
    s = np.sort(ns)
    return s[np.concatenate(([True], s[1:] != s[:-1]))]


def validate_ohlcv(df: pd.DataFrame, timeframe: str | None = None) -> ValidationReport:
    """Survey a frame against the OHLCV contract; the timeframe is inferred when not given."""
    if not isinstance(df, pd.DataFrame):
        raise BadInputError(f"expected a pandas DataFrame of candles, got {type(df).__name__}")
    td = timeframe_to_timedelta(timeframe) if timeframe is not None else None
    report = ValidationReport(n_bars=len(df))
    idx = df.index
    if not isinstance(idx, pd.DatetimeIndex):
        report.issues.append(
            "index is not timestamps: index the frame by bar open time (a UTC DatetimeIndex)"
        )
        return report
    if idx.tz is None:
        report.issues.append("timestamps have no timezone: localize them (preprocess.to_utc)")
        idx = idx.tz_localize("UTC")
    elif str(idx.tz) != "UTC":
        report.issues.append(f"timestamps are in {idx.tz}, not UTC: convert (preprocess.to_utc)")
        idx = idx.tz_convert("UTC")
    idx = idx.as_unit("ns")
    if df.index.name != INDEX_NAME:
        report.warnings.append(f"index is named {df.index.name!r}, expected {INDEX_NAME!r}")
    _check_columns(df, report)

    ns = idx.asi8
    report.duplicates = pd.DatetimeIndex(idx[idx.duplicated()].unique(), name=INDEX_NAME)
    report.unsorted = idx[1:][ns[1:] < ns[:-1]]
    report.nan_rows = idx[_nonfinite_rows(df)]
    report.ohlc_violations = idx[_ohlc_violations(df)]
    prices = [c for c in PRICE_COLUMNS if c in df.columns]
    if prices:
        report.nonpositive_prices = idx[(df[prices].to_numpy(dtype="float64") <= 0).any(axis=1)]
    if "volume" in df.columns:
        report.negative_volume = idx[df["volume"].to_numpy(dtype="float64") < 0]
    for c in EXTRA_COLUMNS:
        if c in df.columns and (df[c].to_numpy(dtype="float64") < 0).any():
            report.issues.append(f"column {c} has negative values: fix or drop those rows")

    bars = pd.DatetimeIndex(_sorted_unique(ns), tz="UTC")
    if len(bars) == 0:
        return report
    report.first, report.last = bars[0], bars[-1]
    if td is None:
        inferred = infer_timeframe(bars)
        if inferred is None:
            report.expected_bars = len(bars)
            return report
        timeframe, td = inferred, timeframe_to_timedelta(inferred)
    report.timeframe = timeframe
    _survey_spacing(bars, td, report)
    return report


def check_ohlcv(df: pd.DataFrame, name: str = "data", timeframe: str | None = None) -> None:
    """Raise ``DataValidationError`` (one line) if ``df`` breaks the OHLCV contract; gaps pass.

    The common case (a frame that holds) is one vectorized pass over the arrays
    (`contract_holds`, ~3 ms per million bars); only a frame that fails it is surveyed in
    full (`validate_ohlcv`, then the pandera schema) to say what is wrong and where.
    """
    if timeframe is not None:
        timeframe_to_timedelta(timeframe)
    if contract_holds(df):
        return
    report = validate_ohlcv(df, timeframe)
    problems = report.problems()
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise DataValidationError(f"{name}: {problems[0]}{more}")
    import pandera.errors

    try:
        ohlcv_schema().validate(df)
    except pandera.errors.SchemaError as exc:  # a break the survey above did not name
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataValidationError(f"{name}: breaks the OHLCV contract: {first}") from exc


def contract_holds(df: pd.DataFrame) -> bool:
    """Whether ``df`` meets the whole OHLCV contract, in one pass and without allocating
    more than a boolean per bar: UTC timestamps strictly increasing, float64 columns, prices
    finite and > 0, ``low <= min(open, close)``, ``high >= max(open, close)``, volume finite
    and >= 0, extra columns >= 0 where present. Any NaN fails a comparison, so it fails."""
    if not isinstance(df, pd.DataFrame):
        return False
    idx = df.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None or str(idx.tz) != "UTC":
        return False
    if any(c not in df.columns for c in OHLCV_COLUMNS):
        return False
    extras = [c for c in EXTRA_COLUMNS if c in df.columns]
    columns = [df[c] for c in (*OHLCV_COLUMNS, *extras)]  # each looked up once
    if any(col.dtype != np.float64 for col in columns):
        return False
    if len(df) == 0:
        return True
    o, h, lo, c, v, *rest = (col.to_numpy() for col in columns)
    if not ohlcv_values_hold(idx.asi8, o, h, lo, c, v):
        return False
    with np.errstate(invalid="ignore"):
        for x in rest:
            if np.less(x, 0).any() or np.isinf(x).any():
                return False
    return True


def ohlcv_values_hold(
    times: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> bool:
    """The values half of ``contract_holds`` on plain arrays (float64 prices and volume,
    ``times`` as integers or datetime64 of the bars' UTC open times): strictly increasing
    times, prices finite and > 0, ``low <= min(open, close)``, ``high >= max(open, close)``,
    volume finite and >= 0. A frame of these arrays on a UTC index meets the contract exactly
    when this holds (``contract_holds`` calls it), so a caller that has the arrays can judge
    them without building the frame, and build it only to say what is wrong."""
    if len(times) > 1 and not np.greater(times[1:], times[:-1]).all():
        return False
    if len(times) == 0:
        return True
    o, h, lo, c, v = open_, high, low, close, volume
    with np.errstate(invalid="ignore"):
        # low > 0 and high finite bound open/close (low <= open, close <= high) on both sides.
        if not (lo.min() > 0 and h.max() < np.inf and v.min() >= 0 and v.max() < np.inf):
            return False
        return bool(
            np.greater_equal(h, o).all()
            and np.greater_equal(h, c).all()
            and np.less_equal(lo, o).all()
            and np.less_equal(lo, c).all()
        )


@dataclass
class PageCheck:
    """A page of candles sorted into what may be stored and what may not.

    ``clean``: the contract-shaped rows inside the requested range (sorted, identical
    repeats merged). ``bad``: the reason for every refused open time inside the range.
    ``outside``: rows that fell outside the range (never stored, not an error).
    """

    clean: pd.DataFrame
    bad: dict[pd.Timestamp, str] = field(default_factory=dict)
    outside: int = 0

    @property
    def ok(self) -> bool:
        return not self.bad

    def first_problem(self) -> str:
        """``bar 2024-01-01 05:00: close is NaN`` (and how many more), for one-line errors."""
        if not self.bad:
            return "no problem"
        ts = min(self.bad)
        more = f" (and {len(self.bad) - 1} more bad bars)" if len(self.bad) > 1 else ""
        return f"bar {_fmt(ts)}: {self.bad[ts]}{more}"


def check_page(
    page: pd.DataFrame,
    timeframe: str,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> PageCheck:
    """Check a page from a source before it is stored: numeric and finite, on the
    timeframe's grid, the OHLCV invariants, and no timestamp given twice with different
    values. Rows outside ``[start, end)`` are counted and dropped."""
    from cryptoai.data.frame import normalize
    from cryptoai.data.timeframes import off_grid

    absent = [c for c in OHLCV_COLUMNS if c not in page.columns]
    if absent:
        raise DataValidationError(f"page lacks column(s) {', '.join(absent)}")
    frame = page
    idx = pd.DatetimeIndex(frame.index)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    ns = idx.as_unit("ns").asi8
    inside = np.ones(len(ns), dtype=bool)
    if start is not None:
        inside &= ns >= start.value
    if end is not None:
        inside &= ns < end.value
    n_outside = int((~inside).sum())
    frame = frame.iloc[np.flatnonzero(inside)].copy()
    frame.index = idx[inside]
    ns = ns[inside]
    known = [c for c in (*OHLCV_COLUMNS, *EXTRA_COLUMNS) if c in frame.columns]
    values = frame[known].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
    o, h, lo, c, v = (values[:, i] for i in range(5))
    extra = values[:, 5:]
    with np.errstate(invalid="ignore"):
        masks = [
            (off_grid(ns, timeframe), lambda i: f"open time is off the {timeframe} grid"),
            (~np.isfinite(values[:, :5]).all(axis=1), lambda i: _nonfinite_reason(values[i], known)),
            ((values[:, :4] <= 0).any(axis=1), lambda i: "a price is <= 0"),
            (h < np.maximum(o, c), lambda i: f"high {h[i]:g} is below max(open, close)"),
            (lo > np.minimum(o, c), lambda i: f"low {lo[i]:g} is above min(open, close)"),
            (v < 0, lambda i: f"volume {v[i]:g} is negative"),
            ((extra < 0).any(axis=1) | np.isinf(extra).any(axis=1),
             lambda i: "an extra column (quote volume, trades...) is negative or infinite"),
        ]  # fmt: skip
    bad: dict[pd.Timestamp, str] = {}
    for mask, reason in masks:
        for i in np.flatnonzero(mask):
            bad.setdefault(frame.index[i], reason(i))
    dup = frame.index.duplicated(keep=False)
    if dup.any():
        rows = pd.DataFrame(values[dup], index=frame.index[dup])
        for ts_, group in rows.groupby(level=0):
            if len(group.drop_duplicates()) > 1:
                bad.setdefault(ts_, "sent twice with different values")
    keep = ~frame.index.isin(list(bad)) if bad else np.ones(len(frame), dtype=bool)
    clean = frame[keep]
    clean = clean.assign(**{k: pd.to_numeric(clean[k], errors="coerce") for k in known})
    return PageCheck(clean=normalize(clean), bad=dict(sorted(bad.items())), outside=n_outside)


def _nonfinite_reason(row: np.ndarray, names: list[str]) -> str:
    for value, col in zip(row[:5], names[:5], strict=True):
        if not np.isfinite(value):
            what = "missing or not a number" if np.isnan(value) else "infinite"
            return f"{col} is {what}"
    return "a value is not finite"


def _check_columns(df: pd.DataFrame, report: ValidationReport) -> None:
    missing = [c for c in OHLCV_COLUMNS if c not in df.columns]
    if missing:
        report.issues.append(
            f"missing columns {', '.join(missing)}: every frame needs {' '.join(OHLCV_COLUMNS)}"
        )
    for c in (*OHLCV_COLUMNS, *EXTRA_COLUMNS):
        if c in df.columns and df[c].dtype != np.float64:
            report.issues.append(f"column {c} is {df[c].dtype}, not float64: cast it (astype)")


def _nonfinite_rows(df: pd.DataFrame) -> np.ndarray:
    cols = [c for c in OHLCV_COLUMNS if c in df.columns]
    if not cols:
        return np.zeros(len(df), dtype=bool)
    values = df[cols].to_numpy(dtype="float64", na_value=np.nan)
    return ~np.isfinite(values).all(axis=1)


def _ohlc_violations(df: pd.DataFrame) -> np.ndarray:
    if not set(PRICE_COLUMNS) <= set(df.columns):
        return np.zeros(len(df), dtype=bool)
    o, h, lo, c = (df[k].to_numpy(dtype="float64", na_value=np.nan) for k in PRICE_COLUMNS)
    with np.errstate(invalid="ignore"):
        return (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (lo > h)


def _survey_spacing(bars: pd.DatetimeIndex, td: pd.Timedelta, report: ValidationReport) -> None:
    """Gaps, expected bar count and bars off the timeframe grid, on sorted unique timestamps."""
    ns, step = bars.asi8, td.value
    report.off_grid = bars[(ns - ns[0]) % step != 0]
    if len(report.off_grid):
        report.warnings.append(
            f"{len(report.off_grid)} bars are off the {report.timeframe} grid (first at "
            f"{_fmt(report.off_grid[0])}): resample or check the timeframe"
        )
    elif ns[0] % step and step <= 86_400 * 10**9:
        report.warnings.append(
            f"bars are not aligned to whole {report.timeframe} periods (first at {_fmt(bars[0])})"
        )
    diffs = np.diff(ns)
    at = np.flatnonzero(diffs > step)
    n_missing = (diffs[at] - 1) // step  # bars that fit strictly between the two present ones
    report.gaps = [
        (bars[i] + td, bars[i + 1], int(k)) for i, k in zip(at, n_missing, strict=True) if k > 0
    ]
    report.missing_bars = int(n_missing.sum())
    report.expected_bars = int((ns[-1] - ns[0]) // step) + 1
    if report.expected_bars < len(bars):  # off-grid bars: count what is there
        report.expected_bars = len(bars) + report.missing_bars


def _fmt(ts: pd.Timestamp | None) -> str:
    if ts is None:
        return "-"
    return ts.strftime("%Y-%m-%d %H:%M") if ts.second == 0 else ts.strftime("%Y-%m-%d %H:%M:%S")
