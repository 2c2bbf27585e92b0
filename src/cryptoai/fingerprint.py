"""Content fingerprints of frames, for cache keys and run metadata ("which data was this?")."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def _array_bytes(values: np.ndarray) -> bytes:
    """Bytes of a 1-D array that depend on its values only, not on memory layout."""
    if values.dtype.kind == "f":
        values = values.astype("<f8")
        values = np.where(np.isnan(values), np.nan, values)  # one NaN bit pattern
    elif values.dtype.kind in "iub":
        values = values.astype("<i8")
    elif values.dtype.kind == "M":
        values = values.astype("datetime64[ns]").astype("<i8")
    else:  # strings, objects, categoricals: hash their text
        text = "\x1f".join("\x00" if pd.isna(v) else str(v) for v in values)
        return text.encode()
    return np.ascontiguousarray(values).tobytes()


def _index_bytes(index: pd.Index) -> bytes:
    if isinstance(index, pd.DatetimeIndex):
        tz = str(index.tz)
        return tz.encode() + index.as_unit("ns").asi8.astype("<i8").tobytes()
    return _array_bytes(index.to_numpy())


def frame_fingerprint(df: pd.DataFrame | pd.Series, length: int = 16) -> str:
    """Hex sha256 prefix of a frame's index, column names, dtypes and values.

    Equal content gives the same fingerprint whatever the memory layout (C or Fortran order,
    one block or many) or NaN payload; any changed value, timestamp or column name changes it.
    """
    frame = df.to_frame() if isinstance(df, pd.Series) else df
    h = hashlib.sha256()
    h.update(f"rows:{len(frame)}:index:".encode() + _index_bytes(frame.index))
    for i, name in enumerate(frame.columns):
        col = frame.iloc[:, i]
        h.update(f"\x1ecol:{name}:{col.dtype}:".encode())
        h.update(_array_bytes(col.to_numpy()))
    return h.hexdigest()[:length]
