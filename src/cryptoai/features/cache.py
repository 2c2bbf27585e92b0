"""Processed features on disk, keyed by the spec and the data they were computed from.

``{root}/{SYMBOL}/{timeframe}.parquet`` holds the latest features of a series; the key (hash
of the resolved spec, the feature code version and the OHLCV fingerprint) is stored in the
Parquet metadata. A different spec or different data recomputes and replaces the file, so a
stale frame is never returned. Writes go to a temporary file renamed into place.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cryptoai.data.symbols import path_safe
from cryptoai.data.timeframes import timeframe_to_timedelta
from cryptoai.features.engineering import build_features
from cryptoai.features.spec import FeatureSpec, as_spec
from cryptoai.fingerprint import frame_fingerprint

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("data/processed/features")
KEY_FIELD = b"cryptoai.features.key"


def cache_path(symbol: str, timeframe: str, root: str | Path = DEFAULT_ROOT) -> Path:
    """Where the features of one symbol/timeframe live (both validated: no stray paths)."""
    timeframe_to_timedelta(timeframe)
    return Path(root) / path_safe(symbol) / f"{timeframe}.parquet"


def cache_key(ohlcv: pd.DataFrame, spec: FeatureSpec) -> str:
    """Key of a feature frame: the spec's fingerprint joined with the data's."""
    return f"{spec.fingerprint()}-{frame_fingerprint(ohlcv)}"


def cached_features(
    ohlcv: pd.DataFrame,
    spec: FeatureSpec | str | Path,
    symbol: str,
    timeframe: str,
    root: str | Path = DEFAULT_ROOT,
) -> pd.DataFrame:
    """``build_features(ohlcv, spec)``, read from the cache when the key matches."""
    spec = as_spec(spec)
    path = cache_path(symbol, timeframe, root)
    key = cache_key(ohlcv, spec)
    cached = _read_if_key(path, key)  # one read: the key and the data come from one file
    if cached is not None:
        log.debug("feature cache hit: %s", path)
        return cached
    log.info("computing features for %s %s (cache %s)", symbol, timeframe, path)
    features = build_features(ohlcv, spec)
    _write_atomic(features, path, key)
    return features


def _read_if_key(path: Path, key: str) -> pd.DataFrame | None:
    """The cached frame if ``path`` holds features under ``key``; a concurrent writer may
    replace the file at any time, so key and data are taken from the same read."""
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid):
        log.warning("unreadable feature cache %s: recomputing", path)
        return None
    stored = (table.schema.metadata or {}).get(KEY_FIELD)
    return table.to_pandas() if stored is not None and stored.decode() == key else None


def _write_atomic(features: pd.DataFrame, path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(features, preserve_index=True)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), KEY_FIELD: key})
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
