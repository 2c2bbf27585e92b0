"""Preprocessing checked against independent computations and hand-worked examples."""

import math

import numpy as np
import pandas as pd
import pytest

from cryptoai.data.preprocess import (
    clip_returns_full_sample,
    fill_gaps,
    resample_ohlcv,
    to_utc,
    winsorize_returns_full_sample,
)
from cryptoai.data.sources.synthetic import synthetic_ohlcv
from cryptoai.data.timeframes import timeframe_to_timedelta
from cryptoai.data.validate import check_ohlcv
from cryptoai.errors import BadInputError

SUMMED = ["volume", "quote_volume", "trades", "taker_buy_base", "taker_buy_quote"]


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    """Three days of 1m bars with a few holes (so some hours and one day are partial)."""
    df = synthetic_ohlcv("BTC/USDT", "1m", "2015-03-01", "2015-03-04")
    return df.drop(df.index[[7, 100, 101, 1500, 2999]])


def _naive_resample(df: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Reference: a plain loop over epoch-aligned buckets, complete ones only."""
    step = timeframe_to_timedelta(timeframe)
    source = df.index[1] - df.index[0]
    rows, stamps = [], []
    buckets: dict[pd.Timestamp, list[int]] = {}
    for i, t in enumerate(df.index):
        start = pd.Timestamp((t.value // step.value) * step.value, tz="UTC")
        buckets.setdefault(start, []).append(i)
    for start, members in buckets.items():
        if len(members) != step // source:
            continue
        part = df.iloc[members]
        row = {
            "open": part["open"].iloc[0],
            "high": max(part["high"]),
            "low": min(part["low"]),
            "close": part["close"].iloc[-1],
        }
        row |= {c: math.fsum(part[c]) for c in SUMMED}
        rows.append(row)
        stamps.append(start)
    columns = ["open", "high", "low", "close", *SUMMED]
    index = pd.DatetimeIndex(stamps, name="timestamp", tz="UTC").as_unit("ns")
    return pd.DataFrame(rows, index=index, columns=columns, dtype="float64")


@pytest.mark.parametrize("tf", ["5m", "1h", "1d"])
def test_resample_matches_a_plain_loop(minutes, tf):
    got = resample_ohlcv(minutes, tf)
    want = _naive_resample(minutes, tf)
    pd.testing.assert_frame_equal(got, want, rtol=1e-12)


def test_partial_bars_dropped(minutes):
    hours = resample_ohlcv(minutes, "1h")
    assert len(hours) == 72 - 4  # hours 00, 01, 1d 01h, 2d 01h lost a minute
    holes = pd.DatetimeIndex(["2015-03-01 00:00", "2015-03-01 01:00", "2015-03-02 01:00",
                              "2015-03-03 01:00"], tz="UTC")  # fmt: skip
    assert not hours.index.isin(holes).any()
    days = resample_ohlcv(minutes, "1d")
    assert len(days) == 0  # every day lost at least one minute
    kept = resample_ohlcv(minutes, "1h", drop_partial=False)
    assert len(kept) == 72
    first = minutes.loc["2015-03-01 00:00":"2015-03-01 00:59"]
    assert kept["volume"].iloc[0] == pytest.approx(first["volume"].sum(), rel=1e-12)
    assert kept["open"].iloc[0] == first["open"].iloc[0]


def test_chained_resampling_equals_direct():
    df = synthetic_ohlcv("ETH/USDT", "1m", "2015-03-01", "2015-03-05")
    df = df.drop(df.index[[3000, 4000]])
    direct_h = resample_ohlcv(df, "1h")
    chained_h = resample_ohlcv(resample_ohlcv(df, "5m"), "1h")
    pd.testing.assert_frame_equal(chained_h, direct_h, rtol=1e-12)
    direct_d = resample_ohlcv(df, "1d")
    chained_d = resample_ohlcv(resample_ohlcv(resample_ohlcv(df, "5m"), "1h"), "1d")
    pd.testing.assert_frame_equal(chained_d, direct_d, rtol=1e-12)
    assert list(direct_d.index.day) == [1, 2, 4]  # day 3 has two holes
    check_ohlcv(direct_h)


def test_resample_equals_the_generator_at_the_coarse_bar_open():
    fine = synthetic_ohlcv("BTC/USDT", "1h", "2024-01-01", "2024-01-15")
    weekly = resample_ohlcv(fine, "1w")  # epoch-aligned weeks start on Thursday
    assert list(weekly.index) == [pd.Timestamp("2024-01-04", tz="UTC")]
    assert weekly["open"].iloc[0] == fine.loc["2024-01-04 00:00", "open"]


def test_resample_rejects_finer_or_non_multiple_targets(minutes):
    hours = resample_ohlcv(minutes, "1h")
    with pytest.raises(BadInputError, match="whole multiple of 1h"):
        resample_ohlcv(hours, "30m")
    with pytest.raises(BadInputError, match="whole multiple of 1h"):
        resample_ohlcv(hours, "90m")
    with pytest.raises(BadInputError, match="sorted, unique"):
        resample_ohlcv(minutes.iloc[::-1], "5m")
    with pytest.raises(BadInputError, match="source_timeframe"):
        resample_ohlcv(minutes.iloc[:1], "5m")


def _hand_frame() -> pd.DataFrame:
    idx = pd.DatetimeIndex(
        ["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 04:00", "2024-01-01 05:00"],
        tz="UTC",
        name="timestamp",
    )
    return pd.DataFrame(
        {
            "open": [10.0, 11.0, 14.0, 15.0],
            "high": [12.0, 13.0, 16.0, 17.0],
            "low": [9.0, 10.0, 13.0, 14.0],
            "close": [11.0, 12.0, 15.0, 16.0],
            "volume": [1.0, 2.0, 3.0, 4.0],
            "trades": [5.0, 6.0, 7.0, 8.0],
        },
        index=idx,
    )


def test_fill_flat_bar_by_bar():
    out = fill_gaps(_hand_frame(), "1h", "flat")
    assert list(out.index.hour) == [0, 1, 2, 3, 4, 5]
    assert list(out["filled"]) == [False, False, True, True, False, False]
    for hour in (2, 3):
        row = out.loc[f"2024-01-01 {hour:02d}:00"]
        assert [row[c] for c in ("open", "high", "low", "close")] == [12.0] * 4
        assert row["volume"] == 0.0 and row["trades"] == 0.0
    pd.testing.assert_frame_equal(
        out[~out["filled"]].drop(columns="filled"), _hand_frame(), check_freq=False
    )
    check_ohlcv(out)


@pytest.mark.parametrize(("policy", "source_hour"), [("ffill", 1), ("bfill_lookahead", 4)])
def test_fill_copy_policies_bar_by_bar(policy, source_hour):
    frame = _hand_frame()
    out = fill_gaps(frame, "1h", policy)
    source = frame.loc[f"2024-01-01 {source_hour:02d}:00"]
    for hour in (2, 3):
        row = out.loc[f"2024-01-01 {hour:02d}:00"]
        assert row.drop("filled").astype("float64").equals(source) and row["filled"]
    assert out["filled"].sum() == 2


def test_fill_none_changes_nothing_and_limit_leaves_long_gaps():
    frame = _hand_frame()
    none = fill_gaps(frame, "1h", "none")
    pd.testing.assert_frame_equal(none.drop(columns="filled"), frame)
    assert not none["filled"].any()
    limited = fill_gaps(frame, "1h", "flat", limit=1)
    assert len(limited) == 4 and not limited["filled"].any()
    later = frame.set_axis(frame.index + pd.Timedelta("7h"))  # bars at 7, 8, 11, 12
    filled = fill_gaps(pd.concat([frame, later]), None, "flat", limit=1)  # inferred: 1h
    assert list(filled.index[filled["filled"]].hour) == [6]


def test_fill_rejects_bad_policy_and_off_grid_bars():
    frame = _hand_frame()
    with pytest.raises(BadInputError, match="none, ffill, flat, bfill_lookahead"):
        fill_gaps(frame, "1h", "linear")
    with pytest.raises(BadInputError, match="not on one 2h grid"):
        fill_gaps(frame, "2h", "flat")
    with pytest.raises(BadInputError, match="to_utc"):
        fill_gaps(frame.tz_localize(None), "1h", "flat")


def test_fill_keeps_earlier_marks_and_resample_carries_them(minutes):
    filled = fill_gaps(minutes, "1m", "flat")
    assert filled["filled"].sum() == 5 and len(filled) == 3 * 1440
    twice = fill_gaps(filled.drop(filled.index[50]), "1m", "ffill")
    assert twice["filled"].sum() == 6
    hours = resample_ohlcv(filled, "1h")
    assert len(hours) == 72 and hours["filled"].sum() == 4
    assert hours["filled"].dtype == bool


def test_to_utc_reads_local_time_and_keeps_aware_times():
    idx = pd.DatetimeIndex(["2024-01-15 09:00", "2024-07-15 09:00"])
    frame = pd.DataFrame({"close": [1.0, 2.0]}, index=idx)
    berlin = to_utc(frame, "Europe/Berlin")
    assert list(berlin.index.hour) == [8, 7]  # CET is UTC+1, CEST UTC+2
    assert str(berlin.index.tz) == "UTC" and berlin.index.name == "timestamp"
    assert list(to_utc(frame).index.hour) == [9, 9]  # naive means UTC
    aware = frame.tz_localize("Asia/Tokyo")
    assert list(to_utc(aware).index.hour) == [0, 0]
    fall_back = pd.DatetimeIndex(
        ["2024-10-27 01:30", "2024-10-27 02:30", "2024-10-27 02:30", "2024-10-27 03:30"]
    )
    ambiguous = pd.DataFrame({"close": [1.0, 2.0, 3.0, 4.0]}, index=fall_back)
    out = to_utc(ambiguous, "Europe/Berlin")
    assert out.index.is_unique and list(out.index.hour) == [23, 0, 1, 2]
    with pytest.raises(BadInputError, match="Mars/Olympus"):
        to_utc(frame, "Mars/Olympus")


def _returns_frame() -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": [100.0, 100.0, 101.0, 150.0, 151.5],
            "high": [101.0, 102.0, 155.0, 152.0, 152.0],
            "low": [99.0, 99.5, 100.0, 149.0, 149.0],
            "close": [100.0, 101.0, 150.0, 151.5, 150.0],
            "volume": [1.0, 1.0, 1.0, 1.0, 1.0],
            "quote_volume": [100.0, 101.0, 140.0, 150.0, 150.0],
        },
        index=idx,
    )


def test_winsorize_by_hand():
    frame = _returns_frame()
    out, touched = winsorize_returns_full_sample(frame, 0.0, 0.75)
    r = [math.log(101 / 100), math.log(150 / 101), math.log(1.01), math.log(150 / 151.5)]
    s = sorted(r)
    cap = s[2] + 0.25 * (s[3] - s[2])  # 75% quantile, linear interpolation at position 2.25
    assert list(touched) == [frame.index[2]]
    assert list(out["close"].iloc[:2]) == [100.0, 101.0]  # before the touch: exact
    assert out["close"].iloc[2] == pytest.approx(101 * math.exp(cap), rel=1e-12)
    assert out["close"].iloc[3] == pytest.approx(101 * math.exp(cap) * 1.01, rel=1e-12)
    assert out["close"].iloc[4] == pytest.approx(
        101 * math.exp(cap) * 1.01 * 150 / 151.5, rel=1e-12
    )
    # the touched bar's path is scaled with its return: log(x / 101) * cap / log(150 / 101)
    k = cap / r[1]
    assert out["high"].iloc[2] == pytest.approx(101 * math.exp(k * math.log(155 / 101)), rel=1e-12)
    assert out["low"].iloc[2] == pytest.approx(101 * math.exp(k * math.log(100 / 101)), rel=1e-12)
    assert out["open"].iloc[2] == pytest.approx(101.0, rel=1e-12)
    # later bars move by the same factor, quote volume with the typical price
    factor = out["close"].iloc[3] / 151.5
    assert out["open"].iloc[3] == pytest.approx(150 * factor, rel=1e-12)
    assert out["quote_volume"].iloc[3] == pytest.approx(150 * factor, rel=1e-12)
    assert list(out["volume"]) == [1.0] * 5
    check_ohlcv(out)


def test_clip_returns_by_hand():
    frame = _returns_frame()
    r = np.diff(np.log(frame["close"].to_numpy()))
    mean, sd = r.mean(), r.std(ddof=1)
    out, touched = clip_returns_full_sample(frame, n_sigma=1.0)
    assert list(touched) == [frame.index[2]]  # only the +40% bar is beyond one sigma
    assert math.log(out["close"].iloc[2] / 101) == pytest.approx(mean + sd, rel=1e-12)
    robust_out, robust_touched = clip_returns_full_sample(frame, n_sigma=3.0, robust=True)
    med = np.median(r)
    mad = 1.4826 * np.median(np.abs(r - med))
    want = [frame.index[i + 1] for i in range(4) if abs(r[i] - med) > 3 * mad]
    assert list(robust_touched) == want and len(want) >= 1
    with pytest.raises(BadInputError, match="n_sigma"):
        clip_returns_full_sample(frame, n_sigma=0)


def test_clipping_rebuilds_prices_consistent_with_the_clipped_returns():
    frame = synthetic_ohlcv("SOL/USDT", "1h", "2024-01-01", "2024-03-01")
    r = np.diff(np.log(frame["close"].to_numpy()))
    lo, hi = np.quantile(r, [0.01, 0.99])
    out, touched = winsorize_returns_full_sample(frame, 0.01, 0.99)
    new_r = np.diff(np.log(out["close"].to_numpy()))
    np.testing.assert_allclose(new_r, np.clip(r, lo, hi), atol=1e-12)
    assert len(touched) == int(((r < lo) | (r > hi)).sum())
    first = frame.index.get_loc(touched[0])
    pd.testing.assert_frame_equal(out.iloc[:first], frame.iloc[:first])
    check_ohlcv(out)
    untouched, none = winsorize_returns_full_sample(frame, 0.0, 1.0)
    assert len(none) == 0
    pd.testing.assert_frame_equal(untouched, frame)
    with pytest.raises(BadInputError, match="0 <= lower < upper <= 1"):
        winsorize_returns_full_sample(frame, 0.9, 0.1)
