"""frame_fingerprint: content-addressed, layout-independent."""

from __future__ import annotations

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


def test_every_single_cell_change_gives_a_new_fingerprint():
    """Change one value at a time, anywhere (NaN to a number too): all fingerprints distinct."""
    base = frame()
    seen = {frame_fingerprint(base)}
    for i in range(base.shape[0]):
        for j in range(base.shape[1]):
            changed = base.copy()
            changed.iloc[i, j] = 3.0 if np.isnan(changed.iloc[i, j]) else changed.iloc[i, j] + 0.5
            seen.add(frame_fingerprint(changed))
    assert len(seen) == base.size + 1


def test_content_not_arrangement_decides_across_a_file_round_trip(tmp_path):
    """The same content read back from CSV and Parquet fingerprints alike; values moved
    between columns or rows do not."""
    a = frame()
    a.to_csv(tmp_path / "a.csv")
    a.to_parquet(tmp_path / "a.parquet")
    from_csv = pd.read_csv(tmp_path / "a.csv", index_col="timestamp", parse_dates=True)
    from_parquet = pd.read_parquet(tmp_path / "a.parquet")
    assert frame_fingerprint(from_csv) == frame_fingerprint(a) == frame_fingerprint(from_parquet)
    swapped_columns = a.rename(columns={"close": "volume", "volume": "close"})[["close", "volume"]]
    swapped_rows = a.copy()
    swapped_rows.iloc[[0, 1]] = a.iloc[[1, 0]].to_numpy()
    assert frame_fingerprint(swapped_columns) != frame_fingerprint(a)
    assert frame_fingerprint(swapped_rows) != frame_fingerprint(a)


def test_dtype_is_part_of_the_content():
    """Equal numbers of another dtype are other data (an int volume column is not a float one),
    and so is a value that only rounds equal."""
    a = frame()
    as_float32 = a.astype({"volume": "float32"})
    as_int = a.astype({"volume": "int64"})
    assert (as_int["volume"] == a["volume"]).all()
    assert len({frame_fingerprint(x) for x in (a, as_float32, as_int)}) == 3
    nudged = a.copy()
    nudged.iloc[0, 1] = np.nextafter(10.0, 11.0)  # the next float64 after 10.0
    assert frame_fingerprint(nudged) != frame_fingerprint(a)


def test_lengths_are_prefixes_of_one_sha256_hex_digest():
    a = frame()
    full = frame_fingerprint(a, length=64)
    assert len(full) == 64 and set(full) <= set("0123456789abcdef")
    assert all(frame_fingerprint(a, length=k) == full[:k] for k in (8, 16, 32))


def test_series_and_text_columns():
    s = pd.Series([1.0, 2.0], name="x")
    assert frame_fingerprint(s) == frame_fingerprint(s.to_frame())
    t = pd.DataFrame({"sym": ["BTC", "ETH"], "n": [1, 2]})
    u = pd.DataFrame({"sym": ["BTC", "ETC"], "n": [1, 2]})
    assert frame_fingerprint(t) != frame_fingerprint(u)
    assert frame_fingerprint(t) == frame_fingerprint(t.copy())
