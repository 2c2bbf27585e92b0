"""Raw store: round trips, merges, day layout, atomicity, checksums, verify, missing ranges."""

from __future__ import annotations

import errno
import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cryptoai.data.store import RawStore, SeriesKey, StoreError
from cryptoai.errors import BadInputError, DataValidationError


def candles(start: str, periods: int, freq: str = "1h", seed: int = 0, extras: bool = False):
    """A contract frame (ns UTC index named timestamp, float64 columns) of random-walk bars."""
    idx = pd.date_range(start, periods=periods, freq=freq, tz="UTC", name="timestamp")
    rng = np.random.default_rng(seed)
    close = 100 + rng.standard_normal(periods).cumsum()
    open_ = close + rng.standard_normal(periods) * 0.1
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + 0.5,
            "low": np.minimum(open_, close) - 0.5,
            "close": close,
            "volume": rng.random(periods) * 10,
        },
        index=idx.as_unit("ns"),
    )
    if extras:
        frame["quote_volume"] = frame["volume"] * frame["close"]
        frame["trades"] = rng.integers(1, 500, periods).astype("float64")
    return frame


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_round_trip_is_exact(tmp_path):
    frame = candles("2024-03-01 05:00", 60, extras=True)
    store = RawStore(tmp_path)
    store.write("binance", "BTC/USDT", "1h", frame)
    loaded = store.load("binance", "BTC/USDT", "1h")
    pd.testing.assert_frame_equal(loaded, frame, check_freq=False)
    assert str(loaded.index.dtype) == "datetime64[ns, UTC]"
    assert loaded.index.name == "timestamp"
    assert list(loaded.dtypes.unique()) == [np.dtype("float64")]


def test_files_land_on_their_utc_day(tmp_path):
    frame = candles("2024-03-01 20:00", 30)  # 20:00 day 1 .. 01:00 day 3
    store = RawStore(tmp_path)
    paths = store.write("binance", "BTCUSDT", "1h", frame)
    folder = tmp_path / "binance" / "BTC-USDT" / "1h"
    expected = [folder / f"2024-03-0{d}.parquet" for d in (1, 2, 3)]
    assert paths == expected
    assert sorted(folder.glob("*.parquet")) == expected
    for path in expected:
        stamps = pq.read_table(path).column("timestamp").to_pandas()
        assert (stamps.dt.strftime("%Y-%m-%d") == path.stem).all()
    assert [len(pq.read_table(p)) for p in expected] == [4, 24, 2]
    schema = pq.read_schema(expected[0])
    assert str(schema.field("timestamp").type) == "timestamp[ns, tz=UTC]"
    assert all(
        str(schema.field(c).type) == "double" for c in ("open", "high", "low", "close", "volume")
    )


def test_overlapping_writes_merge_newer_rows_win(tmp_path):
    first = candles("2024-01-01", 48, seed=1)
    second = candles("2024-01-02 12:00", 48, seed=2)  # overlaps the last 12 bars of first
    store = RawStore(tmp_path)
    store.write("binance", "ETH/USDT", "1h", first)
    store.write("binance", "ETH/USDT", "1h", second)
    both = pd.concat([first, second])
    expected = both[~both.index.duplicated(keep="last")].sort_index()
    pd.testing.assert_frame_equal(
        store.load("binance", "ETH-USDT", "1h"), expected, check_freq=False
    )
    overlap = second.index[:12]
    assert (
        store.load("binance", "ETHUSDT", "1h").loc[overlap, "close"] == second.loc[overlap, "close"]
    ).all()


def test_rewriting_the_same_data_changes_nothing(tmp_path):
    frame = candles("2024-01-01", 72)
    store = RawStore(tmp_path)
    paths = store.write("binance", "BTC/USDT", "1h", frame)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}
    manifest = (paths[0].parent / "_manifest.json").read_bytes()
    assert store.write("binance", "BTC/USDT", "1h", frame.iloc[10:50]) == paths[:3]
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths} == before
    assert (paths[0].parent / "_manifest.json").read_bytes() == manifest


def test_failed_write_leaves_previous_file_intact_and_no_temp(tmp_path, monkeypatch):
    store = RawStore(tmp_path)
    [path] = store.write("binance", "BTC/USDT", "1h", candles("2024-01-01", 12))
    folder = path.parent
    before = path.read_bytes()
    manifest_before = (folder / "_manifest.json").read_bytes()
    temps_seen = []

    def broken_writer(table, where, **kwargs):
        where.write(b"PAR1 half a file")  # the temp file exists and holds garbage
        temps_seen.extend(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", broken_writer)
    with pytest.raises(StoreError, match="disk is full"):
        store.write("binance", "BTC/USDT", "1h", candles("2024-01-01 06:00", 12, seed=9))
    monkeypatch.undo()
    assert temps_seen, "the writer should have been handed a temp file in the series folder"
    assert path.read_bytes() == before
    assert (folder / "_manifest.json").read_bytes() == manifest_before
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock",
        "2024-01-01.parquet",
        "_manifest.json",
    ]
    assert store.verify() == []
    pd.testing.assert_frame_equal(
        store.load("binance", "BTC/USDT", "1h"), candles("2024-01-01", 12), check_freq=False
    )


def test_manifest_records_checksums_rows_and_bounds(tmp_path):
    frame = candles("2024-02-28 22:00", 30, extras=True)
    store = RawStore(tmp_path)
    paths = store.write("kraken", "BTC/USD", "1h", frame)
    doc = json.loads((paths[0].parent / "_manifest.json").read_text())
    assert doc["symbol"] == "BTC/USD" and doc["timeframe"] == "1h" and doc["exchange"] == "kraken"
    assert doc["columns"] == ["open", "high", "low", "close", "volume", "quote_volume", "trades"]
    assert sorted(doc["files"]) == [p.name for p in paths]
    for path in paths:
        entry = doc["files"][path.name]
        day = frame[frame.index.strftime("%Y-%m-%d") == path.stem]
        assert entry["sha256"] == sha256(path)
        assert entry["size"] == path.stat().st_size
        assert entry["rows"] == len(day)
        assert pd.Timestamp(entry["first"]) == day.index[0]
        assert pd.Timestamp(entry["last"]) == day.index[-1]


def test_verify_finds_damage(tmp_path):
    store = RawStore(tmp_path)
    paths = store.write("binance", "BTC/USDT", "1h", candles("2024-01-01", 24 * 4))
    store.write("binance", "ETH/USDT", "1d", candles("2024-01-01", 3, freq="1D"))
    assert store.verify() == []

    damaged = bytearray(paths[1].read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    paths[1].write_bytes(bytes(damaged))
    paths[2].unlink()
    stray = paths[0].parent / "2023-12-31.parquet"
    stray.write_bytes(b"not parquet at all")

    problems = store.verify()
    assert len(problems) == 4, problems
    text = "\n".join(problems)
    assert f"{paths[1]}: checksum mismatch" in text
    assert f"{paths[2]}: listed in the manifest but missing" in text
    assert f"{stray}: not in the manifest" in text
    assert f"{stray}: unreadable" in text
    assert all("\n" not in p for p in problems)


def test_load_slices_many_days_like_pandas(tmp_path):
    frame = candles("2024-01-01", 60 * 24 * 31, freq="1min", seed=3)  # a month of 1m bars
    store = RawStore(tmp_path)
    store.write("binance", "BTC/USDT", "1m", frame)
    start, end = "2024-01-03 13:37", pd.Timestamp("2024-01-27 00:01", tz="UTC")
    got = store.load("binance", "BTCUSDT", "1m", start=start, end=end)
    expected = frame[(frame.index >= pd.Timestamp(start, tz="UTC")) & (frame.index < end)]
    pd.testing.assert_frame_equal(got, expected, check_freq=False)
    only_close = store.load(
        "binance", "BTC-USDT", "1m", start="2024-01-31 23:00", columns=["close"]
    )
    pd.testing.assert_frame_equal(
        only_close, frame.loc["2024-01-31 23:00":, ["close"]], check_freq=False
    )
    head = store.load("binance", "BTC/USDT", "1m", end="2024-01-01 00:05")
    assert list(head.index.minute) == [0, 1, 2, 3, 4]
    outside = store.load("binance", "BTC/USDT", "1m", start="2025-01-01")
    assert outside.empty and list(outside.columns) == list(frame.columns)


def test_load_reports_what_is_stored(tmp_path):
    store = RawStore(tmp_path)
    store.write("binance", "BTC/USDT", "1h", candles("2024-01-01", 5))
    with pytest.raises(BadInputError, match=r"stored series are binance/BTC-USDT/1h"):
        store.load("binance", "ETH/USDT", "1h")
    with pytest.raises(BadInputError, match=r"store is empty"):
        RawStore(tmp_path / "nothing").load("binance", "BTC/USDT", "1h")
    with pytest.raises(BadInputError, match=r"no column\(s\) funding"):
        store.load("binance", "BTC/USDT", "1h", columns=["funding"])
    with pytest.raises(BadInputError, match="empty date range"):
        store.load("binance", "BTC/USDT", "1h", start="2024-01-02", end="2024-01-01")


def test_bad_input_is_refused_before_anything_is_written(tmp_path):
    store = RawStore(tmp_path)
    good = candles("2024-01-01", 5)
    with pytest.raises(BadInputError, match="lack column"):
        store.write("binance", "BTC/USDT", "1h", good.drop(columns="close"))
    with pytest.raises(BadInputError, match="indexed by their UTC open time"):
        store.write("binance", "BTC/USDT", "1h", good.reset_index())
    with pytest.raises(BadInputError, match="unknown timeframe"):
        store.write("binance", "BTC/USDT", "1hour", good)
    with pytest.raises(BadInputError, match="bad exchange name"):
        store.write("../x", "BTC/USDT", "1h", good)
    assert not any(tmp_path.rglob("*.parquet"))


def test_series_lists_every_stored_series(tmp_path):
    store = RawStore(tmp_path)
    store.write("binance", "ETHUSDT", "4h", candles("2024-01-01", 3, freq="4h"))
    store.write("Binance", "btc-usdt", "1h", candles("2024-01-01", 3))
    store.write("kraken", "BTC/EUR", "1d", candles("2024-01-01", 3, freq="1D"))
    store.mark_covered("kraken", "SOL/EUR", "1d", "2024-01-01", "2024-02-01")  # no data yet
    assert store.series() == [
        SeriesKey("binance", "BTC/USDT", "1h"),
        SeriesKey("binance", "ETH/USDT", "4h"),
        SeriesKey("kraken", "BTC/EUR", "1d"),
    ]


def test_missing_ranges_against_hand_made_bars(tmp_path):
    store = RawStore(tmp_path)
    day = candles("2024-01-01", 24)
    held = day.drop(day.index[[5, 6, 7, 15]])  # bars 05,06,07 and 15 were never stored
    store.write("binance", "BTC/USDT", "1h", held)

    def h(text: str) -> pd.Timestamp:
        return pd.Timestamp(f"2024-01-{text}", tz="UTC")

    assert store.missing_ranges("binance", "BTC/USDT", "1h", "2024-01-01", "2024-01-02") == [
        (h("01 05:00"), h("01 08:00")),
        (h("01 15:00"), h("01 16:00")),
    ]
    # an unaligned window: the grid starts at the next whole hour; a run ends one bar
    # after its last missing bar
    assert store.missing_ranges(
        "binance", "BTCUSDT", "1h", "2023-12-31 21:30", "2024-01-01 06:10"
    ) == [
        (pd.Timestamp("2023-12-31 22:00", tz="UTC"), h("01 00:00")),
        (h("01 05:00"), h("01 07:00")),
    ]
    store.mark_covered("binance", "BTC/USDT", "1h", "2024-01-01 06:00", "2024-01-01 16:00")
    assert store.missing_ranges("binance", "BTC/USDT", "1h", "2024-01-01", "2024-01-03") == [
        (h("01 05:00"), h("01 06:00")),
        (h("02 00:00"), h("03 00:00")),
    ]
    assert store.missing_ranges("binance", "ETH/USDT", "1h", "2024-01-01", "2024-01-01 03:00") == [
        (h("01 00:00"), h("01 03:00"))
    ]
    with pytest.raises(BadInputError, match="empty date range"):
        store.missing_ranges("binance", "BTC/USDT", "1h", "2024-01-02", "2024-01-02")


def test_missing_ranges_matches_a_naive_loop(tmp_path):
    rng = np.random.default_rng(7)
    bars = candles("2024-01-01", 500, freq="15min")
    held = bars[rng.random(500) > 0.3]
    store = RawStore(tmp_path)
    store.write("okx", "BTC/USDT", "15m", held)
    store.mark_covered("okx", "BTC/USDT", "15m", "2024-01-02", "2024-01-03")
    got = store.missing_ranges("okx", "BTC/USDT", "15m", "2023-12-31 22:00", "2024-01-06 10:00")
    grid = pd.date_range(
        "2023-12-31 22:00", "2024-01-06 10:00", freq="15min", inclusive="left", tz="UTC"
    )
    absent = [
        t
        for t in grid
        if t not in held.index
        and not (pd.Timestamp("2024-01-02", tz="UTC") <= t < pd.Timestamp("2024-01-03", tz="UTC"))
    ]
    from_ranges = [t for s, e in got for t in pd.date_range(s, e, freq="15min", inclusive="left")]
    assert from_ranges == absent
    assert all(got[i][1] < got[i + 1][0] for i in range(len(got) - 1))  # maximal runs


def test_damaged_manifest_is_reported_not_replaced(tmp_path):
    store = RawStore(tmp_path)
    [path] = store.write("binance", "BTC/USDT", "1h", candles("2024-01-01", 3))
    (path.parent / "_manifest.json").write_text("{ not json")
    with pytest.raises(DataValidationError, match="unreadable"):
        store.write("binance", "BTC/USDT", "1h", candles("2024-01-01 03:00", 3))
    assert len(pq.read_table(path)) == 3
    assert len(store.verify()) == 1 and "_manifest.json is unreadable" in store.verify()[0]


def test_concurrent_writers_to_one_day_lose_nothing(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    day = candles("2024-01-01", 24 * 4, freq="15min", seed=5)
    chunks = [day.iloc[i::8] for i in range(8)]  # interleaved: every writer touches the same file
    store = RawStore(tmp_path)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda c: store.write("binance", "BTC/USDT", "15m", c), chunks))
    pd.testing.assert_frame_equal(store.load("binance", "BTC/USDT", "15m"), day, check_freq=False)
    assert store.verify() == []


def test_days_with_and_without_extra_columns_load_together(tmp_path):
    plain = candles("2024-01-01", 24, seed=1)
    rich = candles("2024-01-02", 24, seed=2, extras=True)
    store = RawStore(tmp_path)
    store.write("binance", "BTC/USDT", "1h", rich)
    store.write("binance", "BTC/USDT", "1h", plain)  # written last, on an earlier day
    expected = pd.concat([plain, rich])  # NaN extras on the plain day
    pd.testing.assert_frame_equal(
        store.load("binance", "BTC/USDT", "1h"), expected, check_freq=False
    )
    assert store.load("binance", "BTC/USDT", "1h", end="2024-01-02")["trades"].isna().all()
