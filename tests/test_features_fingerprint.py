"""frame_fingerprint: content-addressed, layout-independent."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from cryptoai.fingerprint import frame_fingerprint


def frame() -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=5, freq="1h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"close": [1.0, 2.0, np.nan, 4.0, 5.0], "volume": [10.0, 11.0, 12.0, 13.0, 14.0]},
        index=index,
    )


def test_same_content_same_fingerprint_whatever_the_layout():
    a = frame()
    fortran = pd.DataFrame(np.asfortranarray(a.to_numpy()), index=a.index, columns=a.columns)
    split = pd.concat([a[["close"]], a[["volume"]]], axis=1)  # two blocks instead of one
    rebuilt = a.iloc[::-1].iloc[::-1]  # a non-contiguous view
    fingerprints = {frame_fingerprint(x) for x in (a, fortran, split, rebuilt, a.copy())}
    assert len(fingerprints) == 1
    other_unit = a.set_axis(a.index.as_unit("s"))
    assert frame_fingerprint(other_unit) == frame_fingerprint(a)
    assert len(frame_fingerprint(a)) == 16
    assert len(frame_fingerprint(a, length=64)) == 64


def test_nan_payloads_do_not_matter():
    a = frame()
    b = frame()
    weird_nan = np.frombuffer(np.uint64(0x7FF8000000000123).tobytes(), dtype=np.float64)[0]
    b.iloc[2, 0] = weird_nan
    assert frame_fingerprint(a) == frame_fingerprint(b)


def test_any_change_changes_it():
    base = frame_fingerprint(frame())
    value = frame()
    value.iloc[0, 0] = 1.0000000001
    later = frame()
    later.index = later.index + pd.Timedelta("1ms")
    renamed = frame().rename(columns={"volume": "vol"})
    reordered = frame()[["volume", "close"]]
    shorter = frame().iloc[:4]
    others = [value, later, renamed, reordered, shorter]
    assert len({base, *(frame_fingerprint(x) for x in others)}) == len(others) + 1


def test_matches_an_independent_sha256():
    """The documented recipe: row count, UTC ns index, then name, dtype and values per column."""
    a = frame()
    h = hashlib.sha256()
    h.update(b"rows:5:index:" + b"UTC" + a.index.as_unit("ns").asi8.astype("<i8").tobytes())
    for name in a.columns:
        h.update(f"\x1ecol:{name}:float64:".encode() + a[name].to_numpy().astype("<f8").tobytes())
    assert frame_fingerprint(a, length=64) == h.hexdigest()


def test_series_and_text_columns():
    s = pd.Series([1.0, 2.0], name="x")
    assert frame_fingerprint(s) == frame_fingerprint(s.to_frame())
    t = pd.DataFrame({"sym": ["BTC", "ETH"], "n": [1, 2]})
    u = pd.DataFrame({"sym": ["BTC", "ETC"], "n": [1, 2]})
    assert frame_fingerprint(t) != frame_fingerprint(u)
    assert frame_fingerprint(t) == frame_fingerprint(t.copy())
