"""The raw store: one Parquet file per UTC day under ``{root}/{exchange}/{BTC-USDT}/{timeframe}/``.

Writes go to a temp file in the same folder and are moved into place with ``os.replace``, so
a reader or an interrupted writer only ever sees whole files; the series manifest (checksums,
rows, covered ranges) is rewritten after the data files (at once when a listed file was
replaced, so its old checksum never outlives it). One writer per series: a file lock in the
series folder, under which temp files left by a killed writer are removed.

Reads verify: every day file a load touches must match its manifest entry (size and
sha256, remembered per file by mtime so repeated loads stay fast), else the load stops with
a one-line error naming the file and the repair command. A fetch treats such a day as
missing and downloads it again (replacing the file, never merging into it); ``repair``
rebuilds a lost or damaged manifest from the files that verify. Reads go through
``pyarrow.dataset`` over the day files picked by name, so years of 1m candles load in one
vectorized pass. OS errors (disk full, read-only, permissions, a file where a folder should
be) become one-line ``StoreError``s, with the store as it was.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from cryptoai._atomic import TMP_SUFFIX, atomic_file
from cryptoai._progress import tqdm
from cryptoai.data.frame import EXTRA_COLUMNS, INDEX_NAME, OHLCV_COLUMNS, merge, normalize
from cryptoai.data.manifest import (
    MANIFEST_NAME,
    FileEntry,
    Interval,
    Manifest,
    merge_intervals,
    subtract_interval,
)
from cryptoai.data.symbols import canonical, from_path, path_safe
from cryptoai.data.timeframes import bar_grid, parse_range, parse_utc, timeframe_to_timedelta
from cryptoai.errors import BadInputError, CryptoaiError, DataValidationError

log = logging.getLogger(__name__)

_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.parquet$")
_EXCHANGE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_LOCK_NAME = ".lock"
_LOCK_TIMEOUT_S = 120
_DAY = pd.Timedelta(days=1)
TimeLike = str | pd.Timestamp

#: One FileLock object per lock file and process: reentrant within a thread (a fetch holds
#: the series lock while the store's own writes take it again), exclusive across threads
#: and processes.
_LOCKS: dict[str, FileLock] = {}
_LOCKS_GUARD = threading.Lock()
#: path -> (mtime_ns, size, inode, sha256) of files whose digest was computed; a file whose
#: mtime is within ``_RACY_S`` of the digest is not remembered (it may change again unseen
#: within the clock's granularity, the "racy git" problem).
_DIGESTS: dict[str, tuple[int, int, int, str]] = {}
_RACY_S = 2.0


class StoreError(CryptoaiError):
    """The file system refused a store operation (full, read-only, permissions, not a folder)."""


@dataclass
class RepairReport:
    """What ``RawStore.repair`` did to one series."""

    series: SeriesKey
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    manifest_rebuilt: bool = False

    def __str__(self) -> str:
        rebuilt = "manifest rebuilt from the files that verify; " if self.manifest_rebuilt else ""
        return (
            f"{self.series}: {rebuilt}{len(self.kept)} day file(s) verified,"
            f" {len(self.removed)} removed to be fetched again"
        )


class SeriesKey(NamedTuple):
    """One stored series; ``symbol`` is canonical (``BTC/USDT``)."""

    exchange: str
    symbol: str
    timeframe: str

    def __str__(self) -> str:
        return f"{self.exchange}/{path_safe(self.symbol)}/{self.timeframe}"


class RawStore:
    """Parquet lake of raw candles: atomic, idempotent day files plus a checksummed manifest."""

    def __init__(self, root: str | Path = "data/raw") -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ paths
    def key(self, exchange: str, symbol: str, timeframe: str) -> SeriesKey:
        """Validated key: lower-case exchange id, canonical symbol, known timeframe."""
        ex = exchange.strip().lower() if isinstance(exchange, str) else ""
        if not _EXCHANGE.match(ex):
            raise BadInputError(
                f"bad exchange name {exchange!r}: use a plain id such as binance or kraken"
            )
        tf = timeframe.strip() if isinstance(timeframe, str) else timeframe
        timeframe_to_timedelta(tf)
        return SeriesKey(ex, canonical(symbol), tf)

    def series_dir(self, exchange: str, symbol: str, timeframe: str) -> Path:
        key = self.key(exchange, symbol, timeframe)
        return self._dir(key)

    def _dir(self, key: SeriesKey) -> Path:
        return self.root / key.exchange / path_safe(key.symbol) / key.timeframe

    # ------------------------------------------------------------------ write
    def write(self, exchange: str, symbol: str, timeframe: str, frame: pd.DataFrame) -> list[Path]:
        """Store candles, merging into existing day files (newer rows win); returns the day
        files that hold the frame's rows. Rewriting identical data changes nothing on disk."""
        key = self.key(exchange, symbol, timeframe)
        new = _checked_frame(frame, key)
        if new.empty:
            return []
        folder = self._dir(key)
        day_ns = new.index.asi8 - new.index.asi8 % _DAY.value
        days, starts = np.unique(day_ns, return_index=True)
        bounds = [*starts.tolist(), len(new)]
        paths: list[Path] = []
        with self._lock(key, folder), _os_errors(f"write {key}", self.root):
            manifest = self._read_manifest(key) or Manifest(key.exchange, key.symbol, key.timeframe)
            changed = False
            few = len(days) < 50
            bar = tqdm(
                total=len(days), unit="day", desc=f"write {key}", leave=False, disable=few or None
            )
            with bar:
                for i, day in enumerate(days):
                    part = new.iloc[bounds[i] : bounds[i + 1]]
                    day_ts = pd.Timestamp(day, tz="UTC")
                    path = folder / f"{day_ts:%Y-%m-%d}.parquet"
                    paths.append(path)
                    listed = manifest.files.get(path.name)
                    why = _untrusted(path, listed) if path.exists() else None
                    if why is not None:  # its bars cannot be trusted: replace, and re-fetch the day
                        log.warning("%s %s: replacing it instead of merging into it", path, why)
                        manifest.covered = subtract_interval(
                            manifest.covered, (day_ts, day_ts + _DAY)
                        )
                        listed, changed = None, True
                    entry = self._write_day(path, part, listed, merge_old=why is None)
                    if entry is not None:
                        manifest.files[path.name] = entry
                        changed = True
                        if listed is not None:  # never leave a stale checksum behind
                            self._write_manifest(folder, manifest)
                            changed = False
                    bar.update()
            columns = _ordered([*manifest.columns, *new.columns])
            if changed or columns != manifest.columns:
                manifest.columns = columns
                self._write_manifest(folder, manifest)
        log.debug("stored %d bars of %s in %d day files", len(new), key, len(paths))
        return paths

    def _write_day(
        self, path: Path, part: pd.DataFrame, entry: FileEntry | None, *, merge_old: bool = True
    ) -> FileEntry | None:
        """Merge ``part`` into one day file; ``None`` when the file already held exactly that."""
        if merge_old and path.exists():
            old = _read_day(path)
            merged = merge(old, part)
            if merged.equals(old) and entry is not None:
                return None
        else:
            merged = part
        table = _to_table(merged)
        with atomic_file(path) as fh:
            pq.write_table(table, fh, compression="zstd")
        return _entry_for(path, merged)

    def mark_covered(
        self, exchange: str, symbol: str, timeframe: str, start: TimeLike, end: TimeLike
    ) -> None:
        """Record ``[start, end)`` as fully fetched: bars absent there are exchange gaps."""
        s, e = parse_range(start, end)
        self.record_fetch(exchange, symbol, timeframe, (s, e), [(s, e)])

    def record_fetch(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        requested: Interval,
        covered: Sequence[Interval],
    ) -> None:
        """Record that ``requested`` was fetched and the ``covered`` parts of it completely
        (bars absent there are holes the source confirmed), in one manifest write."""
        key = self.key(exchange, symbol, timeframe)
        folder = self._dir(key)
        with self._lock(key, folder), _os_errors(f"record the fetch of {key}", self.root):
            manifest = self._read_manifest(key) or Manifest(key.exchange, key.symbol, key.timeframe)
            manifest.covered = merge_intervals([*manifest.covered, *covered])
            manifest.requested = merge_intervals([*manifest.requested, requested])
            on_disk = {p.name for _, p in _day_files(folder)}
            for name in [n for n in manifest.files if n not in on_disk]:
                day = _day_of(name)
                if any(cs <= day and day + _DAY <= ce for cs, ce in manifest.covered):
                    del manifest.files[name]  # re-fetched: the source has nothing that day
            self._write_manifest(folder, manifest)

    # ------------------------------------------------------------------ read
    def load(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """One OHLCV frame for ``[start, end)`` (UTC; either may be omitted)."""
        key = self.key(exchange, symbol, timeframe)
        days = _day_files(self._dir(key))
        if not days:
            raise BadInputError(self._not_stored(key))
        s, e = _bounds(start, end)
        manifest = self._read_manifest(key)
        listed = manifest.files if manifest is not None else {}
        for day, path in days:
            if (s is None or day + _DAY > s) and (e is None or day < e):
                why = _untrusted(path, listed.get(path.name), root=self.root)
                if why is not None:
                    raise DataValidationError(
                        f"{path}: {why}: its candles are not read; repair with:"
                        f" {self.repair_command(key)}"
                    )
        stored = self._columns(key, [p for _, p in days])
        wanted = list(stored) if columns is None else list(columns)
        unknown = [c for c in wanted if c not in stored]
        if unknown:
            raise BadInputError(
                f"{key} has no column(s) {', '.join(unknown)}: stored columns are {', '.join(stored)}"
            )
        table = self._scan(key, days, s, e, stored, wanted)
        frame = table.to_pandas().set_index(INDEX_NAME)
        if not frame.index.is_monotonic_increasing:
            frame = frame.sort_index()
        return frame

    def missing_ranges(
        self, exchange: str, symbol: str, timeframe: str, start: TimeLike, end: TimeLike
    ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """Contiguous ``[s, e)`` runs of grid bars in ``[start, end)`` neither stored nor covered."""
        key = self.key(exchange, symbol, timeframe)
        s, e = parse_range(start, end)
        td = timeframe_to_timedelta(key.timeframe)
        grid = bar_grid(s, e, key.timeframe).as_unit("ns").asi8
        if grid.size == 0:
            return []
        missing = np.ones(grid.size, dtype=bool)
        manifest = self._read_manifest(key)
        listed = manifest.files if manifest is not None else {}
        days, untrusted = [], []
        for day, path in _day_files(self._dir(key)):
            if day + _DAY <= s or day >= e:
                days.append((day, path))  # outside the range: not read, not checked
            elif _untrusted(path, listed.get(path.name), root=self.root) is None:
                days.append((day, path))
            else:
                untrusted.append(day)
        if untrusted:
            log.warning(
                "%s: %d day file(s) do not match the manifest (first %s): fetching them again",
                key,
                len(untrusted),
                f"{untrusted[0]:%Y-%m-%d}",
            )
        if days:
            stored = self._scan(key, days, s, e, [], []).column(INDEX_NAME)
            stored_ns = np.sort(stored.cast(pa.int64()).to_numpy(zero_copy_only=False))
            if stored_ns.size:
                pos = np.minimum(np.searchsorted(stored_ns, grid), stored_ns.size - 1)
                missing &= stored_ns[pos] != grid
        covered = np.zeros(grid.size, dtype=bool)
        for cs, ce in manifest.covered if manifest else []:
            lo, hi = np.searchsorted(grid, [cs.value, ce.value], side="left")
            covered[lo:hi] = True
        # A day file listed in the manifest but gone (deleted as damaged), or one that does
        # not match the manifest, is fetched again.
        on_disk = {p.name for _, p in days}
        gone = [_day_of(n) for n in listed if n not in on_disk]
        for day in [*gone, *untrusted]:
            lo, hi = np.searchsorted(grid, [day.value, (day + _DAY).value], side="left")
            covered[lo:hi] = False
        missing &= ~covered
        idx = np.flatnonzero(missing)
        if idx.size == 0:
            return []
        breaks = np.flatnonzero(np.diff(idx) != 1)
        firsts = idx[np.r_[0, breaks + 1]]
        lasts = idx[np.r_[breaks, idx.size - 1]]
        return [
            (pd.Timestamp(grid[a], tz="UTC"), pd.Timestamp(grid[b], tz="UTC") + td)
            for a, b in zip(firsts, lasts, strict=True)
        ]

    def manifest(self, exchange: str, symbol: str, timeframe: str) -> Manifest | None:
        """The series manifest, or ``None`` if nothing was stored yet."""
        return self._read_manifest(self.key(exchange, symbol, timeframe))

    def series(self) -> list[SeriesKey]:
        """Every series with at least one day file."""
        return sorted(key for key, folder in self._series_dirs() if _day_files(folder))

    # ------------------------------------------------------------------ check
    def verify(self) -> list[str]:
        """Problems found, one line each: damaged, unlisted or missing files. Temp files a
        killed writer left behind are removed (under the series lock, so never one a live
        writer is still filling)."""
        problems: list[str] = []
        for key, folder in self._series_dirs():
            if any(folder.glob(f".*{TMP_SUFFIX}")):
                self._clean_temps(key, folder)
            problems.extend(_verify_series(key, folder, self.repair_command(key)))
        return problems

    def repair(self, exchange: str, symbol: str, timeframe: str) -> RepairReport:
        """Keep the day files that verify, remove the others (and un-cover their days, so a
        fetch gets them again), and rewrite the manifest. A lost or unreadable manifest is
        rebuilt from the files that read back whole and meet the OHLCV contract; its covered
        ranges are then unknown, so holes are asked for again."""
        from cryptoai.data.validate import check_page

        key = self.key(exchange, symbol, timeframe)
        folder = self._dir(key)
        report = RepairReport(series=key)
        if not folder.is_dir():
            return report
        with self._lock(key, folder), _os_errors(f"repair {key}", self.root):
            try:
                old = self._read_manifest(key)
            except DataValidationError:
                old = None
            report.manifest_rebuilt = old is None
            new = Manifest(
                key.exchange,
                key.symbol,
                key.timeframe,
                covered=list(old.covered) if old else [],
                requested=list(old.requested) if old else [],
            )
            columns: list[str] = []
            on_disk = _day_files(folder)
            for day, path in on_disk:
                entry = old.files.get(path.name) if old else None
                why = _untrusted(path, entry) if old is not None else None
                frame = None
                if why is None:
                    try:
                        frame = _read_day(path)
                    except DataValidationError as exc:
                        why = str(exc)
                if frame is not None and old is None:
                    checked = check_page(frame, key.timeframe, day, day + _DAY)
                    if not checked.ok or checked.outside or frame.empty:
                        why = f"breaks the contract ({checked.first_problem()})"
                if why is not None:
                    path.unlink()
                    new.covered = subtract_interval(new.covered, (day, day + _DAY))
                    report.removed.append(f"{path.name} ({why})")
                    continue
                new.files[path.name] = entry if entry is not None else _entry_for(path, frame)
                columns.extend(c for c in frame.columns if c not in columns)
                report.kept.append(path.name)
            names = {p.name for _, p in on_disk}
            for name in old.files if old else {}:
                if name not in names:
                    day = _day_of(name)
                    new.covered = subtract_interval(new.covered, (day, day + _DAY))
            new.columns = _ordered(columns)
            self._write_manifest(folder, new)
        log.info("%s", report)
        return report

    def extent(self, exchange: str, symbol: str, timeframe: str) -> Interval | None:
        """The days a series spans (stored, listed, requested), as ``[first day, last + 1)``."""
        key = self.key(exchange, symbol, timeframe)
        days = [d for d, _ in _day_files(self._dir(key))]
        try:
            manifest = self._read_manifest(key)
        except DataValidationError:
            manifest = None
        if manifest is not None:
            days += [_day_of(n) for n in manifest.files]
            for s, e in [*manifest.requested, *manifest.covered]:
                days += [s.floor("D"), (e - pd.Timedelta(1)).floor("D")]
        if not days:
            return None
        return min(days), max(days) + _DAY

    @contextmanager
    def lock(
        self, exchange: str, symbol: str, timeframe: str, *, timeout_s: float = 3600
    ) -> Iterator[None]:
        """Hold the series' writer lock (e.g. for a whole fetch). If another process holds
        it, say so and wait up to ``timeout_s`` for it to finish."""
        key = self.key(exchange, symbol, timeframe)
        with self._lock(key, self._dir(key), timeout_s=timeout_s):
            yield

    def repair_command(self, key: SeriesKey) -> str:
        """The command line that repairs ``key`` (re-fetching what does not verify)."""
        root = "" if self.root == Path("data/raw") else f" --out {self.root}"
        return (
            f"cryptoai repair {source_options(key.exchange)} --symbol {key.symbol}"
            f" --timeframe {key.timeframe}{root}"
        )

    # ------------------------------------------------------------------ internals
    def _scan(
        self,
        key: SeriesKey,
        days: list[tuple[pd.Timestamp, Path]],
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        stored: list[str],
        wanted: list[str],
    ) -> pa.Table:
        """Read ``wanted`` columns of the day files overlapping ``[start, end)``."""
        schema = _schema(stored)
        files = [
            str(p)
            for day, p in days
            if (start is None or day + _DAY > start) and (end is None or day < end)
        ]
        columns = [INDEX_NAME, *wanted]
        if not files:
            return schema.empty_table().select(columns)
        ts = ds.field(INDEX_NAME)
        conditions = []
        if start is not None:
            conditions.append(
                ts >= pa.scalar(start.as_unit("ns"), type=schema.field(INDEX_NAME).type)
            )
        if end is not None:
            conditions.append(ts < pa.scalar(end.as_unit("ns"), type=schema.field(INDEX_NAME).type))
        expr = None
        for c in conditions:
            expr = c if expr is None else expr & c
        try:
            dataset = ds.dataset(files, schema=schema, format="parquet")
            return dataset.to_table(columns=columns, filter=expr)
        except (pa.ArrowException, OSError) as exc:
            raise DataValidationError(
                f"cannot read {key} ({_first_line(exc)}): repair with: {self.repair_command(key)}"
            ) from exc

    def _columns(self, key: SeriesKey, files: list[Path]) -> list[str]:
        """Value columns of a series: from the manifest, else from the files' footers."""
        manifest = self._read_manifest(key)
        if manifest is not None and manifest.columns:
            return manifest.columns
        names: list[str] = []
        for path in files:
            try:
                names.extend(pq.read_schema(path).names)
            except (pa.ArrowException, OSError) as exc:
                raise DataValidationError(
                    f"stored file {path} is damaged ({_first_line(exc)}): repair with:"
                    f" {self.repair_command(key)}"
                ) from exc
        return _ordered([n for n in names if n != INDEX_NAME])

    def _read_manifest(self, key: SeriesKey) -> Manifest | None:
        path = self._dir(key) / MANIFEST_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return Manifest.from_json(text, where=str(path))

    def _write_manifest(self, folder: Path, manifest: Manifest) -> None:
        with atomic_file(folder / MANIFEST_NAME) as fh:
            fh.write(manifest.to_json().encode("utf-8"))

    @contextmanager
    def _lock(
        self, key: SeriesKey, folder: Path, *, timeout_s: float = _LOCK_TIMEOUT_S
    ) -> Iterator[None]:
        """One writer per series at a time, across threads and processes; reentrant within
        a thread. Whoever takes it first removes the temp files a killed writer left."""
        with _os_errors(f"lock {key}", self.root):
            folder.mkdir(parents=True, exist_ok=True)
            lock = _file_lock(folder / _LOCK_NAME)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                log.warning("%s is being written by another process: waiting for it to finish", key)
                try:
                    lock.acquire(timeout=timeout_s)
                except Timeout as exc:
                    raise CryptoaiError(
                        f"{key} is still being written by another process after {timeout_s:.0f}"
                        " s: wait for it to finish, then re-run"
                    ) from exc
        try:
            if lock.lock_counter == 1:
                self._remove_temps(folder)
            yield
        finally:
            lock.release()

    def _remove_temps(self, folder: Path) -> None:
        """Delete temp files of interrupted writes (call with the series lock held)."""
        for path in folder.glob(f".*{TMP_SUFFIX}"):
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("cannot remove the leftover temp file %s: %s", path, exc)
                continue
            log.info("removed %s, left by an interrupted write", path)

    def _clean_temps(self, key: SeriesKey, folder: Path) -> None:
        """Remove leftover temp files if no writer holds the series now (else they are its)."""
        lock = _file_lock(folder / _LOCK_NAME)
        try:
            lock.acquire(timeout=0)
        except (Timeout, OSError):
            return
        try:
            self._remove_temps(folder)
        finally:
            lock.release()

    def _series_dirs(self) -> Iterator[tuple[SeriesKey, Path]]:
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.glob("*/*/*")):
            if not folder.is_dir():
                continue
            exchange, sym, tf = folder.relative_to(self.root).parts
            try:
                key = self.key(exchange, from_path(sym), tf)
            except BadInputError:
                log.warning("ignoring %s: not a store series folder", folder)
                continue
            yield key, folder

    def _not_stored(self, key: SeriesKey) -> str:
        have = [str(k) for k in self.series()]
        listed = ", ".join(have[:12]) + (f" (+{len(have) - 12} more)" if len(have) > 12 else "")
        root = "" if self.root == Path("data/raw") else f" --out {self.root}"
        return (
            f"no candles stored for {key} under {self.root}: "
            + (f"stored series are {listed}; " if have else "the store is empty; ")
            + f"fetch it first, e.g. cryptoai fetch {source_options(key.exchange)}"
            f" --symbol {key.symbol} --timeframe {key.timeframe} --start 2024-01-01{root}"
        )


def source_options(exchange: str) -> str:
    """The ``--source`` options that fetch into ``data/raw/{exchange}``."""
    m = re.fullmatch(r"synthetic-seed(-?\d+)", exchange)
    if m:
        return f"--source synthetic --seed {m.group(1)}"
    if exchange in ("synthetic", "binance", "coingecko"):
        return f"--source {exchange}"
    if exchange == "csv":
        return "--source csv --path FILE"
    return f"--source ccxt --exchange {exchange}"


def _file_lock(path: Path) -> FileLock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(str(path))
        if lock is None:
            lock = _LOCKS[str(path)] = FileLock(str(path))
        return lock


def _digest(path: Path, st: os.stat_result) -> str:
    """sha256 of a file, remembered by (mtime, size, inode) once the file is not brand new."""
    key = str(path)
    state = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _DIGESTS.get(key)
    if cached is not None and cached[:3] == state:
        return cached[3]
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    if time.time_ns() - st.st_mtime_ns > _RACY_S * 1e9:
        _DIGESTS[key] = (*state, digest)
    else:
        _DIGESTS.pop(key, None)
    return digest


def _untrusted(path: Path, entry: FileEntry | None, root: Path | None = None) -> str | None:
    """Why a day file cannot be trusted, or ``None`` when it matches its manifest entry."""
    if entry is None:
        return "not in the manifest (no checksum recorded)"
    try:
        st = path.stat()
        if st.st_size != entry.size:
            return (
                f"changed since it was written ({st.st_size} bytes, the manifest says {entry.size})"
            )
        if _digest(path, st) != entry.sha256:
            return "checksum does not match the manifest (changed or damaged since it was written)"
    except FileNotFoundError:
        return "listed in the manifest but missing"
    except OSError as exc:
        raise _store_error(exc, f"read {path}", root or path.parent) from exc
    return None


@contextmanager
def _os_errors(what: str, root: Path) -> Iterator[None]:
    """Turn the file system's refusals into one-line errors (the store stays as it was)."""
    try:
        yield
    except OSError as exc:
        raise _store_error(exc, what, root) from exc


def _store_error(exc: OSError, what: str, root: Path) -> StoreError:
    where = exc.filename or root
    code = exc.errno
    if code == errno.ENOSPC or code == errno.EDQUOT:
        fix = "the disk is full: free some space, then re-run"
    elif code == errno.EROFS:
        fix = "the file system is read-only: pass --out a writable folder"
    elif code in (errno.EACCES, errno.EPERM):
        fix = "permission denied: check the folder's permissions or pass --out another folder"
    elif code in (errno.ENOTDIR, errno.EEXIST) or isinstance(exc, NotADirectoryError):
        fix = f"a file is in the way where a folder should be: --out {root} must be a folder"
    else:
        fix = "check the store folder and the disk, then re-run"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return StoreError(f"cannot {what} under {root} ({reason}: {where}): {fix}")


# ---------------------------------------------------------------------- helpers
def _checked_frame(frame: pd.DataFrame, key: SeriesKey) -> pd.DataFrame:
    """Contract-shaped copy of a frame to store; bad shapes are refused, not guessed at."""
    if not isinstance(frame, pd.DataFrame):
        raise BadInputError(
            f"can only store a DataFrame of candles for {key}, got {type(frame).__name__}"
        )
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise BadInputError(
            f"candles for {key} must be indexed by their UTC open time (a DatetimeIndex named"
            f" timestamp), got {type(frame.index).__name__}: set_index the time column first"
        )
    if frame.index.hasnans:
        raise BadInputError(
            f"candles for {key} have missing timestamps (NaT): drop those rows first"
        )
    absent = [c for c in OHLCV_COLUMNS if c not in frame.columns]
    if absent:
        raise BadInputError(
            f"candles for {key} lack column(s) {', '.join(absent)}: the store needs {', '.join(OHLCV_COLUMNS)}"
        )
    bad = [
        str(c)
        for c in frame.columns
        if not pd.api.types.is_numeric_dtype(frame[c]) or str(c) == INDEX_NAME
    ]
    if bad:
        raise BadInputError(
            f"candles for {key} have non-numeric column(s) {', '.join(bad)}: drop or convert them"
        )
    out = normalize(frame)
    return out.astype("float64")


def _ordered(columns: Sequence[str]) -> list[str]:
    """Contract order: OHLCV, known extras, then any others alphabetically."""
    seen = set(columns)
    known = [c for c in (*OHLCV_COLUMNS, *EXTRA_COLUMNS) if c in seen]
    return known + sorted(seen - set(known))


def _schema(columns: Sequence[str]) -> pa.Schema:
    fields = [pa.field(INDEX_NAME, pa.timestamp("ns", tz="UTC"), nullable=False)]
    return pa.schema(fields + [pa.field(c, pa.float64()) for c in columns])


def _to_table(frame: pd.DataFrame) -> pa.Table:
    flat = frame.reset_index()
    return pa.Table.from_pandas(
        flat, schema=_schema(list(frame.columns)), preserve_index=False
    ).replace_schema_metadata(None)


def _read_day(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(
            f"stored file {path} is damaged ({_first_line(exc)}): repair with cryptoai repair"
            " (same options as the fetch)"
        ) from exc
    return table.to_pandas().set_index(INDEX_NAME)


def _entry_for(path: Path, frame: pd.DataFrame) -> FileEntry:
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return FileEntry(
        sha256=digest,
        rows=len(frame),
        first=frame.index[0],
        last=frame.index[-1],
        size=path.stat().st_size,
    )


def _day_files(folder: Path) -> list[tuple[pd.Timestamp, Path]]:
    """Day files of a series folder, by day; other files are ignored."""
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    days = []
    for name in names:
        m = _DAY_FILE.match(name)
        if m:
            with suppress(ValueError):
                days.append((pd.Timestamp(m.group(1), tz="UTC"), folder / name))
    return sorted(days)


def _day_of(name: str) -> pd.Timestamp:
    return pd.Timestamp(name.removesuffix(".parquet"), tz="UTC")


def _bounds(
    start: TimeLike | None, end: TimeLike | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    if start is not None and end is not None:
        return parse_range(start, end)
    s = parse_utc(start, "start") if start is not None else None
    e = parse_utc(end, "end") if end is not None else None
    return s, e


def _verify_series(key: SeriesKey, folder: Path, repair: str) -> list[str]:
    problems: list[str] = []
    try:
        text = (folder / MANIFEST_NAME).read_text(encoding="utf-8")
        manifest: Manifest | None = Manifest.from_json(text, where=str(folder / MANIFEST_NAME))
    except FileNotFoundError:
        manifest = None
    except DataValidationError as exc:
        return [str(exc)]
    listed = manifest.files if manifest else {}
    on_disk = {p.name: p for _, p in _day_files(folder)}
    fix = f"repair with: {repair}"
    for name in sorted(set(listed) - set(on_disk)):
        problems.append(f"{folder / name}: listed in the manifest but missing: {fix}")
    for name, path in sorted(on_disk.items()):
        entry = listed.get(name)
        if entry is None:
            problems.append(f"{path}: not in the manifest (no checksum recorded): {fix}")
        else:
            why = _untrusted(path, entry)
            if why is not None:
                problems.append(f"{path}: checksum mismatch ({why}): {fix}")
                continue
        try:
            rows = pq.read_table(path).num_rows
        except (pa.ArrowException, OSError) as exc:
            problems.append(f"{path}: unreadable ({_first_line(exc)}): {fix}")
            continue
        if entry is not None and rows != entry.rows:
            problems.append(f"{path}: {rows} rows but the manifest says {entry.rows}: {fix}")
    for path in sorted(folder.glob("*.parquet")):
        if path.name not in on_disk:
            problems.append(
                f"{path}: not a day file (expected YYYY-MM-DD.parquet): move it out of the store"
            )
    return problems


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
