"""The data-quality report: coverage, gaps, anomalies and plots for planted problems."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptoai.data.quality import anomalies, quality_report, quality_summary
from cryptoai.data.sources.synthetic import synthetic_ohlcv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def series() -> dict[str, tuple[pd.DataFrame, str]]:
    hourly = synthetic_ohlcv("BTC/USDT", "1h", "2024-01-01", "2024-03-01")
    holey = hourly.drop(hourly.index[[*range(100, 150), 700, 701, 702, 900]])
    minutes = synthetic_ohlcv("ETH/USDT", "1m", "2015-06-01", "2015-06-03").copy()
    col = minutes.columns.get_loc
    spike = minutes.index[500]
    bad_print = 3 * minutes.iloc[499, col("close")]  # +200% and back
    for row, c in ((500, "high"), (500, "close"), (501, "open"), (501, "high")):
        minutes.iloc[row, col(c)] = bad_print
    flat = minutes.iloc[1199, col("close")]
    for c in ("open", "high", "low", "close"):
        minutes.iloc[1200:1230, col(c)] = flat  # a stale feed: flat, zero-volume candles
    minutes.iloc[1200:1230, col("volume")] = 0.0
    minutes.attrs["spike"] = spike
    return {"synthetic/BTC/USDT/1h": (holey, "1h"), "synthetic/ETH/USDT/1m": (minutes, "1m")}


def test_report_lists_coverage_gaps_and_anomalies(tmp_path, series):
    out_md = tmp_path / "reports" / "quality.md"
    eda = tmp_path / "docs" / "eda"
    text = quality_report(series, out_md, eda, top_gaps=2)
    assert out_md.read_text() == text
    hourly, _ = series["synthetic/BTC/USDT/1h"]
    assert "| synthetic/BTC/USDT/1h | 1h | 2024-01-01 00:00 | 2024-02-29 23:00 | 1,386 |" in text
    assert f"{100 * 54 / 1440:.2f}%" in text  # 54 of 1440 expected bars missing
    # the two longest gaps, with exact spans; the third (one bar) is beyond top_gaps
    assert "| 2024-01-05 04:00 | 2024-01-07 06:00 | 50 | 2 days 02:00:00 |" in text
    assert "| 2024-01-30 04:00 | 2024-01-30 07:00 | 3 | 0 days 03:00:00 |" in text
    assert "2024-02-07 12:00 |" not in text and "top 2 of 3" in text
    minutes, _ = series["synthetic/ETH/USDT/1m"]
    spike = minutes.attrs["spike"]
    assert f"+200.0% at {spike:%Y-%m-%d %H:%M}" in text
    assert "30 bars with zero volume" in text and "30 flat candles" in text
    assert "close unchanged for 31 bars from 2015-06-01 19:59" in text


def test_report_plots_are_pngs_linked_relatively(tmp_path, series):
    out_md = tmp_path / "reports" / "quality.md"
    eda = tmp_path / "docs" / "eda"
    text = quality_report(series, out_md, eda)
    pngs = sorted(eda.glob("*.png"))
    assert [p.name for p in pngs] == ["synthetic_btc_usdt_1h.png", "synthetic_eth_usdt_1m.png"]
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
        link = Path(os.path.relpath(png, out_md.parent)).as_posix()
        assert f"]({link})" in text
        assert (out_md.parent / link).resolve() == png.resolve()


def test_report_on_a_broken_series_says_so(tmp_path):
    df = synthetic_ohlcv("BTC/USDT", "1h", "2024-01-01", "2024-01-03")
    broken = pd.concat([df.iloc[:10], df.iloc[[5]], df.iloc[10:]])
    broken.iloc[3, broken.columns.get_loc("low")] = 1e9
    text = quality_report({"bad": (broken, "1h")}, tmp_path / "q.md", tmp_path / "eda")
    assert "| BROKEN |" in text
    assert "duplicated timestamps (first at 2024-01-01 05:00)" in text
    assert "high/low do not contain open/close (first at 2024-01-01 03:00)" in text


def test_clean_synthetic_data_has_no_market_anomalies():
    df = synthetic_ohlcv("BTC/USDT", "1h", "2023-01-01", "2025-01-01")
    found = anomalies(df)
    assert not any(("zero volume" in a or "flat" in a or "unchanged" in a) for a in found), found
    assert len(found) <= 1  # at most a note on a few fat-tailed moves


def test_summary_is_one_line_per_series(series):
    text = quality_summary(series)
    lines = text.splitlines()
    assert len(lines) == 3 and lines[0].split()[:3] == ["series", "tf", "first"]
    hourly = next(line for line in lines if line.startswith("synthetic/BTC/USDT/1h"))
    assert "3.75%" in hourly and "50 bars at 2024-01-05 04:00" in hourly and hourly.endswith("OK")
    assert np.all([len(line.split()) >= 9 for line in lines[1:]])
