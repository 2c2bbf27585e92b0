"""Shared contracts: timeframes, date ranges, symbols, the OHLCV frame helpers, config errors."""

import pandas as pd
import pytest
from pydantic import BaseModel

from cryptoai.config import load_config, read_yaml
from cryptoai.data import frame, symbols, timeframes
from cryptoai.errors import BadInputError, ConfigError


@pytest.mark.parametrize(
    ("tf", "minutes"),
    [("1m", 1), ("5m", 5), ("15m", 15), ("1h", 60), ("4h", 240), ("1d", 1440), ("1w", 10080)],
)
def test_timeframe_lengths(tf, minutes):
    assert timeframes.timeframe_to_timedelta(tf) == pd.Timedelta(minutes=minutes)
    assert timeframes.timeframe_to_ms(tf) == minutes * 60_000


@pytest.mark.parametrize("bad", ["", "1x", "h1", "0m", "1.5h", None])
def test_bad_timeframe_is_one_line_error(bad):
    with pytest.raises(BadInputError, match="timeframe") as info:
        timeframes.timeframe_to_timedelta(bad)
    assert "\n" not in str(info.value)


def test_range_is_utc_and_half_open():
    s, e = timeframes.parse_range("2024-01-01", "2024-01-02T00:00+02:00")
    assert s == pd.Timestamp("2024-01-01", tz="UTC")
    assert e == pd.Timestamp("2024-01-01T22:00", tz="UTC")
    grid = timeframes.bar_grid(s, e, "1h")
    assert len(grid) == 22 and grid[0] == s and grid[-1] == e - pd.Timedelta(hours=1)


@pytest.mark.parametrize(
    ("start", "end"), [("2024-01-02", "2024-01-01"), ("2024-01-01", "2024-01-01")]
)
def test_empty_or_reversed_range_rejected(start, end):
    with pytest.raises(BadInputError, match="empty date range"):
        timeframes.parse_range(start, end)


def test_unreadable_date_rejected():
    with pytest.raises(BadInputError, match="ISO"):
        timeframes.parse_range("yesterday-ish", "2024-01-01")


def test_bar_grid_aligns_to_timeframe():
    grid = timeframes.bar_grid(
        pd.Timestamp("2024-01-01 00:07", tz="UTC"),
        pd.Timestamp("2024-01-01 01:00", tz="UTC"),
        "15m",
    )
    assert [t.minute for t in grid] == [15, 30, 45]


@pytest.mark.parametrize("raw", ["BTC/USDT", "btcusdt", "BTC-USDT", "btc_usdt", " BTCUSDT "])
def test_symbol_spellings(raw):
    assert symbols.canonical(raw) == "BTC/USDT"
    assert symbols.path_safe(raw) == "BTC-USDT"
    assert symbols.from_path("BTC-USDT") == "BTC/USDT"


def test_unreadable_symbol():
    with pytest.raises(BadInputError, match="BASE/QUOTE"):
        symbols.canonical("XYZ")


def test_from_epoch_ms_and_merge_newer_wins():
    rows = [[0, 1, 2, 0.5, 1.5, 10], [3_600_000, 1.5, 2, 1, 1.8, 5]]
    a = frame.from_epoch_ms(rows)
    assert list(a.columns) == list(frame.OHLCV_COLUMNS)
    assert str(a.index.tz) == "UTC" and a.index.name == "timestamp"
    b = frame.from_epoch_ms([[3_600_000, 9, 9, 9, 9, 9], [7_200_000, 1, 1, 1, 1, 1]])
    merged = frame.merge(a, b)
    assert list(merged["close"]) == [1.5, 9.0, 1.0]
    assert merged.index.is_monotonic_increasing and merged.index.is_unique


class _Cfg(BaseModel):
    name: str
    size: int


def test_config_errors_name_file_field_and_reason(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("name: x\nsize: 3\n")
    assert load_config(good, _Cfg).size == 3
    bad_type = tmp_path / "bad.yaml"
    bad_type.write_text("name: x\nsize: many\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: field 'size'"):
        load_config(bad_type, _Cfg)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [x\nsize: 3\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: broken YAML at line"):
        read_yaml(broken)
    with pytest.raises(ConfigError, match="not found"):
        read_yaml(tmp_path / "missing.yaml")


def test_weekly_bars_open_on_monday():
    grid = timeframes.bar_grid(
        pd.Timestamp("2024-01-03", tz="UTC"), pd.Timestamp("2024-02-01", tz="UTC"), "1w"
    )
    assert list(grid.dayofweek) == [0, 0, 0, 0] and grid[0] == pd.Timestamp("2024-01-08", tz="UTC")
    assert timeframes.floor_to_bar(pd.Timestamp("2024-01-10 13:00", tz="UTC"), "1w") == grid[0]
    assert timeframes.floor_to_bar(
        pd.Timestamp("2024-01-10 13:59", tz="UTC"), "1h"
    ) == pd.Timestamp("2024-01-10 13:00", tz="UTC")
