"""CSV/Parquet import: format variants give the same frame; broken files give useful errors."""

import gzip
import logging

import numpy as np
import pandas as pd
import pytest

from cryptoai.data.sources.base import Source
from cryptoai.data.sources.csv_source import CsvSource, read_ohlcv_file
from cryptoai.data.sources.synthetic import synthetic_ohlcv
from cryptoai.errors import BadInputError

# Three hourly candles, 2024-01-01 00:00 .. 02:00 UTC, written by hand.
ROWS = [
    # open, high, low, close, volume, quote_volume, trades
    (42000.5, 42100.0, 41900.25, 42050.0, 12.5, 525625.0, 310),
    (42050.0, 42300.0, 42000.0, 42250.75, 20.0, 845000.0, 402),
    (42250.75, 42260.0, 41800.0, 41850.0, 31.25, 1310000.0, 655),
]
EPOCH_S = [1704067200, 1704070800, 1704074400]


@pytest.fixture
def expected() -> pd.DataFrame:
    idx = pd.DatetimeIndex(pd.to_datetime(EPOCH_S, unit="s", utc=True), name="timestamp").as_unit(
        "ns"
    )
    cols = ["open", "high", "low", "close", "volume", "quote_volume", "trades"]
    return pd.DataFrame(ROWS, index=idx, columns=cols).astype("float64")


def _lines(ts: list, sep: str = ",") -> list[str]:
    return [sep.join(map(str, (t, *r[:5]))) for t, r in zip(ts, ROWS, strict=True)]


VARIANTS = {
    "ms.csv": "timestamp,open,high,low,close,volume\n"
    + "\n".join(_lines([t * 1000 for t in EPOCH_S])),
    "seconds_caps.csv": "Time,Open,High,Low,Close,Volume\n" + "\n".join(_lines(EPOCH_S)),
    "iso_z.csv": "date,o,h,l,c,v\n"
    + "\n".join(_lines(["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z"])),
    "iso_offsets.csv": "datetime,open,high,low,close,vol\n"
    + "\n".join(
        _lines(["2024-01-01T01:00:00+01:00", "2023-12-31T20:00:00-05:00", "2024-01-01 02:00:00"])
    ),
    "semicolon.csv": "Open Time;Open;High;Low;Close;Volume\n"
    + "\n".join(_lines(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00"], sep=";")),
    "float_seconds.csv": "unix,open,high,low,close,volume\n"
    + "\n".join(_lines([f"{t}.0" for t in EPOCH_S])),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_csv_variants_parse_to_the_same_frame(tmp_path, expected, name):
    path = tmp_path / name
    path.write_text(VARIANTS[name] + "\n")
    got = read_ohlcv_file(path)
    pd.testing.assert_frame_equal(got, expected[["open", "high", "low", "close", "volume"]])


def test_vendor_file_with_preamble_newest_first_and_named_volumes(tmp_path, expected):
    body = [
        f"{t * 1000},{pd.Timestamp(t, unit='s'):%Y-%m-%d %H:%M:%S},BTC/USDT,"
        + ",".join(map(str, (*r[:4], r[4], r[5], r[6])))
        for t, r in zip(EPOCH_S, ROWS, strict=True)
    ]
    text = "https://www.example-vendor.com\nunix,date,symbol,open,high,low,close,Volume BTC,"
    text += "Volume USDT,tradecount\n" + "\n".join(reversed(body)) + "\n"
    path = tmp_path / "vendor.csv"
    path.write_text(text)
    got = read_ohlcv_file(path)
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs["symbol"] == "BTC/USDT"


def test_headerless_exchange_dump_in_microseconds_gzipped(tmp_path, expected):
    lines = []
    for t, r in zip(EPOCH_S, ROWS, strict=True):
        taker_base, taker_quote = r[4] / 2, r[5] / 2
        close_time = (t + 3600) * 1_000_000 - 1
        cells = (t * 1_000_000, *r[:5], close_time, r[5], r[6], taker_base, taker_quote, 0)
        lines.append(",".join(map(str, cells)))
    path = tmp_path / "BTCUSDT-1h-2024-01.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    got = read_ohlcv_file(path)
    want = expected.assign(
        taker_buy_base=expected["volume"] / 2, taker_buy_quote=expected["quote_volume"] / 2
    )
    pd.testing.assert_frame_equal(got, want)


def test_parquet_with_index_or_column(tmp_path, expected):
    indexed = tmp_path / "indexed.parquet"
    expected.tz_convert("Asia/Tokyo").to_parquet(indexed)
    pd.testing.assert_frame_equal(read_ohlcv_file(indexed), expected)
    as_column = tmp_path / "column.parquet"
    raw = expected.reset_index(drop=True).rename(columns={"open": "Open"})
    raw.insert(0, "open_time", [t * 1000 for t in EPOCH_S])
    raw.to_parquet(as_column)
    pd.testing.assert_frame_equal(read_ohlcv_file(as_column), expected)


def test_synthetic_roundtrip_through_csv_is_exact(tmp_path):
    frame = synthetic_ohlcv("ETH/USDT", "5m", "2024-01-01", "2024-01-03")
    path = tmp_path / "eth.csv"
    frame.to_csv(path)
    pd.testing.assert_frame_equal(read_ohlcv_file(path), frame)


HEADER = "timestamp,open,high,low,close,volume\n"
GOOD_1 = "2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n"
GOOD_2 = "2024-01-01T01:00:00Z,1.5,2,1,1.8,5\n"
GOOD_3 = "2024-01-01T02:00:00Z,1.8,2.1,1.7,2.0,7\n"


@pytest.mark.parametrize(
    ("filename", "text", "needles"),
    [
        ("empty.csv", "", ["empty"]),
        ("header_only.csv", HEADER, ["no candle rows"]),
        ("no_close.csv", "timestamp,open,high,low,volume\n1704067200,1,2,0.5,10\n",
         ["no close column", "timestamp,open,high,low,close,volume"]),
        ("no_volume.csv", "time,open,high,low,close\n1704067200,1,2,0.5,1\n",
         ["no volume column", "volume 0"]),
        ("bad_time.csv", HEADER + GOOD_1 + "yesterday,1,2,0.5,1.5,10\n",
         ["line 3", "'yesterday'", "timestamp"]),
        ("missing_time.csv", HEADER + GOOD_1 + ",1,2,0.5,1.5,10\n", ["line 3", "missing timestamp"]),
        ("days.csv", "time,open,high,low,close,volume\n19723,1,2,0.5,1.5,10\n",
         ["line 2", "1970-01-01", "epoch"]),
        ("bad_number.csv", HEADER + GOOD_1 + GOOD_2.replace("1.8", "1,8x"), ["line 3"]),
        ("text_price.csv", HEADER + GOOD_1 + GOOD_2.replace(",1.8,", ",n/a,"),
         ["line 3", "close 'n/a' is not a number"]),
        ("empty_price.csv", HEADER + GOOD_1 + GOOD_2.replace(",1.8,", ",,"),
         ["line 3", "empty close"]),
        ("unsorted.csv", HEADER + GOOD_1 + GOOD_3 + GOOD_2,
         ["out of time order", "line 4", "line 3", "sort the file"]),
        ("conflict.csv", HEADER + GOOD_1 + GOOD_2 + GOOD_2.replace(",5\n", ",6\n"),
         ["appears on lines 3, 4", "different values", "one row per timestamp"]),
        ("ragged.csv", HEADER + GOOD_1 + "2024-01-01T01:00:00Z,1,2,3,4,5,6,7\n", ["malformed CSV"]),
        ("no_header.csv", "1704067200,1,2,0.5\n", ["no header row", "timestamp,open"]),
        ("candles.xlsx", "x", ["unsupported file type", ".csv"]),
    ],
)  # fmt: skip
def test_malformed_files_give_one_line_errors_naming_file_and_fix(
    tmp_path, filename, text, needles
):
    path = tmp_path / filename
    path.write_text(text)
    with pytest.raises(BadInputError) as info:
        read_ohlcv_file(path)
    message = str(info.value)
    assert "\n" not in message and filename in message
    for needle in needles:
        assert needle in message, message


def test_identical_duplicate_rows_are_dropped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "dups.csv"
    path.write_text(HEADER + GOOD_1 + GOOD_2 + GOOD_2 + GOOD_3)
    with caplog.at_level(logging.WARNING):
        got = read_ohlcv_file(path)
    assert len(got) == 3 and got.index.is_unique
    assert "dropped 1 exact duplicate rows (first at line 4)" in caplog.text


def test_missing_file_and_broken_parquet(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        read_ohlcv_file(tmp_path / "nope.csv")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(BadInputError, match="broken.parquet: not a readable Parquet"):
        read_ohlcv_file(broken)


@pytest.fixture
def hourly_file(tmp_path):
    frame = synthetic_ohlcv("BTC/USDT", "1h", "2024-01-01", "2024-01-04")
    path = tmp_path / "btc_1h.csv"
    frame.to_csv(path)
    return path, frame


def test_csv_source_yields_the_requested_range(hourly_file):
    path, frame = hourly_file
    src = CsvSource(path, exchange="mybroker")
    assert isinstance(src, Source) and src.exchange == "mybroker"
    assert CsvSource(path).exchange == "csv"
    assert src.resolve_symbol("btcusdt") == "BTC/USDT"
    start, end = pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-03 05:00", tz="UTC")
    got = pd.concat(list(src.fetch("BTC/USDT", "1h", start, end)))
    pd.testing.assert_frame_equal(got, frame.loc[start : end - pd.Timedelta("1h")])


def test_csv_source_pages(hourly_file, monkeypatch):
    from cryptoai.data.sources import csv_source

    monkeypatch.setattr(csv_source, "PAGE_BARS", 10)
    path, frame = hourly_file
    pages = list(CsvSource(path).fetch("BTC/USDT", "1h", frame.index[0], frame.index[-1]))
    assert [len(p) for p in pages] == [10] * 7 + [1]


def test_csv_source_rejects_a_timeframe_the_file_does_not_have(hourly_file):
    path, frame = hourly_file
    start, end = frame.index[0], frame.index[-1]
    with pytest.raises(BadInputError, match="holds 1h bars, not 5m: import it with --timeframe 1h"):
        list(CsvSource(path).fetch("BTC/USDT", "5m", start, end))
    with pytest.raises(BadInputError, match="opened as 4h"):
        list(CsvSource(path, timeframe="4h").fetch("BTC/USDT", "1h", start, end))


def test_csv_source_rejects_off_grid_rows_and_contract_breaks(tmp_path):
    frame = synthetic_ohlcv("BTC/USDT", "1h", "2024-01-01", "2024-01-02")
    shifted = frame.rename(index={frame.index[5]: frame.index[5] + pd.Timedelta("10min")})
    off = tmp_path / "off.csv"
    shifted.to_csv(off)
    with pytest.raises(BadInputError, match="off the 1h grid"):
        list(CsvSource(off).fetch("BTC/USDT", "1h", frame.index[0], frame.index[-1]))
    broken = frame.copy()
    broken.iloc[3, broken.columns.get_loc("high")] = 1.0  # high below open/close
    bad = tmp_path / "bad.csv"
    broken.to_csv(bad)
    with pytest.raises(Exception, match="high/low do not contain open/close") as info:
        list(CsvSource(bad).fetch("BTC/USDT", "1h", frame.index[0], frame.index[-1]))
    assert "bad.csv" in str(info.value)


def test_csv_source_checks_the_symbol_a_file_names(tmp_path, expected):
    frame = expected.assign(symbol="ETHUSDT")
    path = tmp_path / "eth.csv"
    frame.to_csv(path)
    src = CsvSource(path)
    with pytest.raises(BadInputError, match="holds ETH/USDT, not BTC/USDT"):
        list(src.fetch("BTC/USDT", "1h", expected.index[0], expected.index[-1]))
    got = pd.concat(
        list(src.fetch("ETH/USDT", "1h", expected.index[0], pd.Timestamp("2030-01-01")))
    )
    np.testing.assert_array_equal(got["close"], expected["close"])
