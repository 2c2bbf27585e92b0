"""OHLCV from CSV and Parquet files, with the common column spellings and timestamp formats.

Files come from exchanges' bulk downloads, data vendors and spreadsheets, so column names
(``Open``/``o``, ``Volume BTC``, ``open_time``...), timestamp formats (epoch s/ms/us, ISO
strings with or without an offset) and headerless Binance kline dumps are all accepted.
Broken files are reported, not repaired: the error names the file, the line and the fix.
"""

from __future__ import annotations

import csv
import gzip
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from cryptoai.data.frame import INDEX_NAME, OHLCV_COLUMNS, normalize
from cryptoai.data.sources.base import Source
from cryptoai.data.sources.registry import register_source
from cryptoai.data.symbols import canonical
from cryptoai.data.timeframes import parse_utc, timeframe_to_timedelta
from cryptoai.data.validate import check_ohlcv, infer_timeframe
from cryptoai.errors import BadInputError

log = logging.getLogger(__name__)

PAGE_BARS = 50_000
_CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_FIX = "name the columns timestamp,open,high,low,close,volume"

# Normalized spellings (lowercase, letters and digits only), most specific first.
_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("opentime", "timestamp", "unix", "unixtimestamp", "time", "datetime", "date",
                  "ts", "timeopen", "starttime", "candlebegintime", "dateutc", "timestamputc"),
    "open": ("open", "o", "openprice"),
    "high": ("high", "h", "highprice"),
    "low": ("low", "l", "lowprice"),
    "close": ("close", "c", "closeprice"),
    "volume": ("volume", "vol", "v", "basevolume", "volumebase", "baseassetvolume", "volumefrom"),
    "quote_volume": ("quotevolume", "quoteassetvolume", "volumequote", "quotevol", "turnover",
                     "volumeto"),
    "trades": ("trades", "numberoftrades", "tradecount", "numtrades", "ntrades", "count"),
    "taker_buy_base": ("takerbuybase", "takerbuybaseassetvolume", "takerbuybasevolume",
                       "takerbuyvolume"),
    "taker_buy_quote": ("takerbuyquote", "takerbuyquoteassetvolume", "takerbuyquotevolume"),
}  # fmt: skip
# Headerless layouts by column count: Binance kline dumps and the plain six columns.
_HEADERLESS = {
    12: ("timestamp", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
         "trades", "taker_buy_base", "taker_buy_quote", "ignore"),
    6: ("timestamp", "open", "high", "low", "close", "volume"),
}  # fmt: skip
_VOLUME_OF = re.compile(r"^volume[a-z0-9]{2,12}$")  # "Volume BTC" (normalized: volumebtc)
_EPOCH_SCALE = ((1e11, 10**9), (1e14, 10**6), (1e17, 10**3))  # below -> s, ms, us; else ns


def read_ohlcv_file(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet OHLCV file into a contract frame (UTC, sorted, float64).

    Identical duplicated rows are dropped with a warning and a file written newest-first is
    reversed; any other duplicate or out-of-order row is an error naming the lines.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"data file {path} not found: check the path")
    suffixes = [s.lower() for s in path.suffixes]
    kind = suffixes[-2] if len(suffixes) > 1 and suffixes[-1] == ".gz" else path.suffix.lower()
    if kind in _PARQUET_SUFFIXES:
        raw, first_line, where = _read_parquet(path), 1, "row"
    elif kind in _CSV_SUFFIXES:
        raw, first_line = _read_csv(path)
        where = "line"
    else:
        raise BadInputError(
            f"{path}: unsupported file type {path.suffix!r}: give a .csv (or .csv.gz) or .parquet file"
        )
    if raw.empty:
        raise BadInputError(f"{path}: no candle rows: the file has only a header or is empty")
    lines = np.arange(first_line, first_line + len(raw))
    columns = _map_columns(raw, path)
    ts = _parse_timestamps(raw[columns["timestamp"]], path, lines, where)
    data = {
        name: _parse_numbers(raw[src], name, path, lines, where, required=name in OHLCV_COLUMNS)
        for name, src in columns.items()
        if name != "timestamp"
    }
    frame = pd.DataFrame(data, index=pd.DatetimeIndex(ts, name=INDEX_NAME))
    frame = _check_order(frame, path, lines, where)
    symbol = _file_symbol(raw)
    out = normalize(frame)
    if symbol:
        out.attrs["symbol"] = symbol
    return out


class CsvSource(Source):
    """A local CSV/Parquet file as a source, so it can be imported into the raw store."""

    def __init__(
        self, path: str | Path, exchange: str = "csv", timeframe: str | None = None
    ) -> None:
        self.path = Path(path)
        self.exchange = exchange
        self.timeframe = timeframe
        if timeframe is not None:
            timeframe_to_timedelta(timeframe)
        self._frame: pd.DataFrame | None = None

    def resolve_symbol(self, symbol: str) -> str:
        return canonical(symbol)

    def fetch(
        self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> Iterator[pd.DataFrame]:
        """Yield the file's bars in ``[start, end)``, after checking symbol, spacing and contract."""
        frame = self._load()
        td = timeframe_to_timedelta(timeframe)
        if self.timeframe is not None and timeframe_to_timedelta(self.timeframe) != td:
            raise BadInputError(
                f"{self.path} was opened as {self.timeframe} bars but {timeframe} was requested:"
                f" use --timeframe {self.timeframe}"
            )
        found = infer_timeframe(frame.index)
        if found is not None and timeframe_to_timedelta(found) != td:
            raise BadInputError(
                f"{self.path} holds {found} bars, not {timeframe}: import it with --timeframe"
                f" {found} (and resample later if you need {timeframe})"
            )
        steps = np.diff(frame.index.asi8)
        if len(steps) and (steps % td.value).any():
            bad = frame.index[1:][steps % td.value != 0][0]
            raise BadInputError(
                f"{self.path}: bar at {bad} is off the {timeframe} grid: remove or fix irregular rows"
            )
        stored = frame.attrs.get("symbol")
        if stored and canonical(symbol) != stored:
            raise BadInputError(
                f"{self.path} holds {stored}, not {canonical(symbol)}: use --symbol {stored}"
            )
        start, end = parse_utc(start, "start"), parse_utc(end, "end")
        part = frame[(frame.index >= start) & (frame.index < end)]
        for lo in range(0, len(part), PAGE_BARS):
            yield part.iloc[lo : lo + PAGE_BARS]

    def _load(self) -> pd.DataFrame:
        if self._frame is None:
            frame = read_ohlcv_file(self.path)
            check_ohlcv(frame, name=str(self.path))
            self._frame = frame
        return self._frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a broken file
        raise BadInputError(f"{path}: not a readable Parquet file ({exc}): re-export it") from exc
    if isinstance(raw.index, pd.DatetimeIndex) or raw.index.name in _ALIASES["timestamp"]:
        raw = raw.reset_index(names=raw.index.name or INDEX_NAME)
    return raw.reset_index(drop=True)


def _read_csv(path: Path) -> tuple[pd.DataFrame, int]:
    """Raw string cells and the file line of the first data row."""
    head = _head(path)
    if not head.strip():
        raise BadInputError(f"{path}: the file is empty: export the candles again")
    lines = head.splitlines()
    try:
        sep = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    skip = 0  # preamble lines such as a vendor URL above the header
    while skip < len(lines) - 1 and len(lines[skip].split(sep)) < 2:
        skip += 1
    first_cells = [c.strip().strip('"') for c in lines[skip].split(sep)]
    has_header = not _is_number(first_cells[0])
    try:
        raw = pd.read_csv(
            path,
            sep=sep,
            skiprows=skip,
            header=0 if has_header else None,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError as exc:
        raise BadInputError(f"{path}: the file is empty: export the candles again") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())
        raise BadInputError(f"{path}: malformed CSV ({reason}): fix that line") from exc
    if not has_header:
        layout = _HEADERLESS.get(raw.shape[1])
        if layout is None:
            raise BadInputError(f"{path}: no header row and {raw.shape[1]} columns: {_FIX}")
        raw.columns = list(layout)
    return raw, skip + (2 if has_header else 1)


def _head(path: Path, size: int = 8192) -> str:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(size).decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read the file ({exc}): check it") from exc


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _key(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _map_columns(raw: pd.DataFrame, path: Path) -> dict[str, object]:
    """Contract name -> the file's column, for every column found."""
    by_key: dict[str, object] = {}
    for col in raw.columns:
        by_key.setdefault(_key(col), col)
    found: dict[str, object] = {}
    for name, spellings in _ALIASES.items():
        for s in spellings:
            if s in by_key:
                found[name] = by_key[s]
                break
    # "Volume BTC" / "Volume USDT": the first named asset is the base, the second the quote.
    named = [col for k, col in by_key.items() if _VOLUME_OF.match(k) and k not in _all_aliases()]
    if named and "volume" not in found:
        found["volume"] = named.pop(0)
    if named and "quote_volume" not in found:
        found["quote_volume"] = named.pop(0)
    missing = [c for c in ("timestamp", *OHLCV_COLUMNS) if c not in found]
    if missing:
        have = ", ".join(str(c) for c in raw.columns[:12])
        raise BadInputError(
            f"{path}: no {' / '.join(missing)} column (found: {have}): {_FIX}"
            + (" (add volume 0 if unknown)" if missing == ["volume"] else "")
        )
    return found


def _all_aliases() -> set[str]:
    return {s for spellings in _ALIASES.values() for s in spellings}


def _parse_timestamps(
    col: pd.Series, path: Path, lines: np.ndarray, where: str
) -> pd.DatetimeIndex:
    """Epoch numbers (unit guessed per value from magnitude) or date strings -> UTC."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        out = pd.DatetimeIndex(col).tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(col.dtype):
        out = pd.DatetimeIndex(col).tz_localize("UTC")
    else:
        numbers = pd.to_numeric(col, errors="coerce")
        present = col.notna()
        if present.any() and numbers[present].notna().all():
            out = _from_epoch(numbers)
        else:
            out = _from_text(col.astype("string"))
    missing = np.flatnonzero(out.isna())
    if len(missing):
        i = missing[0]
        value = col.iloc[i]
        what = "missing" if pd.isna(value) else f"cannot read {value!r} as a"
        raise BadInputError(
            f"{path}: {where} {lines[i]}: {what} timestamp: use epoch seconds/milliseconds or"
            " ISO dates like 2024-01-31T12:00:00Z"
        )
    too_early = np.flatnonzero(out < pd.Timestamp("1990-01-01", tz="UTC"))
    if len(too_early):
        i = too_early[0]
        raise BadInputError(
            f"{path}: {where} {lines[i]}: timestamp {col.iloc[i]!r} reads as {out[i]:%Y-%m-%d}:"
            " use epoch seconds/milliseconds or ISO dates"
        )
    return out


def _from_epoch(numbers: pd.Series) -> pd.DatetimeIndex:
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    scale = np.ones(len(values), dtype=np.int64)  # nanoseconds per unit, from the magnitude
    for limit, ns_per_unit in reversed(_EPOCH_SCALE):
        scale[np.abs(values) < limit] = ns_per_unit
    if pd.api.types.is_integer_dtype(numbers.dtype):
        ns = numbers.to_numpy(dtype=np.int64) * scale  # exact for integers
    else:
        finite = np.isfinite(values)
        ns = np.full(len(values), np.iinfo(np.int64).min, dtype=np.int64)  # NaT where missing
        ns[finite] = np.round(values[finite] * scale[finite]).astype(np.int64)
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")


def _from_text(text: pd.Series) -> pd.DatetimeIndex:
    for fmt in ("ISO8601", "mixed"):
        try:
            out = pd.to_datetime(text, utc=True, format=fmt, errors="coerce")
        except (ValueError, TypeError):
            continue
        if out.notna().sum() == text.notna().sum():
            break
    return pd.DatetimeIndex(out)


def _parse_numbers(
    col: pd.Series, name: str, path: Path, lines: np.ndarray, where: str, required: bool
) -> np.ndarray:
    numbers = pd.to_numeric(col, errors="coerce")
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    bad = np.flatnonzero(np.isnan(values) & col.notna().to_numpy())
    if len(bad):
        i = bad[0]
        raise BadInputError(
            f"{path}: {where} {lines[i]}: {name} {col.iloc[i]!r} is not a number:"
            f" fix or remove that row ({len(bad)} such rows)"
        )
    if required:
        empty = np.flatnonzero(np.isnan(values))
        if len(empty):
            raise BadInputError(
                f"{path}: {where} {lines[empty[0]]}: empty {name}: fill it or remove that row"
                f" ({len(empty)} such rows)"
            )
    return values


def _check_order(frame: pd.DataFrame, path: Path, lines: np.ndarray, where: str) -> pd.DataFrame:
    """Drop identical duplicate rows (warning); reverse newest-first files; else demand order."""
    ns = frame.index.asi8
    if len(ns) > 1 and (ns[1:] < ns[:-1]).all():
        log.info("%s lists candles newest first; reading it in time order", path)
        frame, lines, ns = frame.iloc[::-1], lines[::-1], ns[::-1]
    dup = frame.index.duplicated(keep=False)
    if dup.any():
        same = frame[dup].reset_index().duplicated(keep=False)
        if not same.all():
            stamp = frame.index[dup][~same.to_numpy()][0]
            at = lines[frame.index == stamp]
            raise BadInputError(
                f"{path}: timestamp {stamp} appears on {where}s {', '.join(map(str, at[:5]))} with"
                " different values: keep one row per timestamp"
            )
        keep = ~frame.index.duplicated(keep="first")
        log.warning(
            "%s: dropped %d exact duplicate rows (first at %s %d)",
            path, int((~keep).sum()), where, int(lines[~keep][0]),
        )  # fmt: skip
        frame, lines, ns = frame[keep], lines[keep], ns[keep]
    back = np.flatnonzero(ns[1:] <= ns[:-1])
    if len(back):
        i = back[0] + 1
        raise BadInputError(
            f"{path}: rows out of time order: {where} {lines[i]} ({frame.index[i]}) comes after"
            f" {where} {lines[i - 1]} ({frame.index[i - 1]}): sort the file by time"
            f" ({len(back)} such places)"
        )
    return frame


def _file_symbol(raw: pd.DataFrame) -> str | None:
    """The pair a file names in a ``symbol``/``pair`` column, when it names exactly one."""
    for col in raw.columns:
        if _key(col) in {"symbol", "pair", "ticker", "market"}:
            values = raw[col].dropna().unique()
            if len(values) == 1:
                try:
                    return canonical(str(values[0]))
                except BadInputError:
                    return None
    return None


@register_source("csv")
def csv_source(
    *, path: str | Path | None = None, exchange: str | None = None, timeframe: str | None = None
) -> CsvSource:
    """A local CSV/Parquet file, imported under ``data/raw/{exchange}`` (default ``csv``)."""
    if path is None:
        raise BadInputError("--source csv needs --path FILE: the CSV or Parquet file to import")
    return CsvSource(path, exchange=exchange or "csv", timeframe=timeframe)
