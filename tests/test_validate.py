"""Validation finds hand-planted problems at the right timestamps; the schema agrees."""

import numpy as np
import pandas as pd
import pandera.errors
import pytest

from cryptoai.data.sources.synthetic import synthetic_ohlcv
from cryptoai.data.timeframes import timeframe_to_timedelta
from cryptoai.data.validate import check_ohlcv, infer_timeframe, ohlcv_schema, validate_ohlcv
from cryptoai.errors import BadInputError, DataValidationError

H = pd.Timedelta("1h")


@pytest.fixture
def clean() -> pd.DataFrame:
    return synthetic_ohlcv("BTC/USDT", "1h", "2024-01-01", "2024-01-11")


def _at(frame: pd.DataFrame, i: int) -> pd.Timestamp:
    return frame.index[i]


def test_clean_frame_is_ok(clean):
    rep = validate_ohlcv(clean)
    assert rep.ok and rep.problems() == [] and rep.warnings == []
    assert rep.timeframe == "1h" and rep.n_bars == rep.expected_bars == 240
    assert rep.first == clean.index[0] and rep.last == clean.index[-1]
    assert rep.missing_bars == 0 and rep.gaps == [] and rep.missing_pct == 0.0
    assert "240 1h bars" in rep.summary() and "contract OK" in rep.summary()
    check_ohlcv(clean)
    ohlcv_schema().validate(clean)


def _naive_gaps(index: pd.DatetimeIndex, step: pd.Timedelta) -> list:
    """Reference: walk the sorted bars one by one."""
    out = []
    for prev, nxt in zip(index[:-1], index[1:], strict=True):
        missing = 0
        t = prev + step
        while t < nxt:
            missing += 1
            t += step
        if missing:
            out.append((prev + step, nxt, missing))
    return out


def test_gaps_match_a_naive_walk_and_do_not_break_the_contract(clean):
    rng = np.random.default_rng(3)
    keep = rng.random(len(clean)) > 0.15
    keep[[0, -1]] = True
    holey = clean[keep]
    rep = validate_ohlcv(holey, "1h")
    assert rep.gaps == _naive_gaps(holey.index, H)
    assert rep.missing_bars == int((~keep).sum()) and rep.expected_bars == 240
    assert rep.missing_pct == pytest.approx(100 * (~keep).sum() / 240)
    assert rep.ok  # gaps are reported, not fatal
    check_ohlcv(holey)


def test_planted_gap_has_exact_span(clean):
    holey = clean.drop(clean.index[10:13])
    rep = validate_ohlcv(holey)
    assert rep.gaps == [(_at(clean, 10), _at(clean, 13), 3)]
    assert "3 missing" in rep.summary() and "1 gaps" in rep.summary()


def _plant(clean: pd.DataFrame, kind: str) -> tuple[pd.DataFrame, str, list[pd.Timestamp]]:
    df = clean.copy()
    col = df.columns.get_loc
    if kind == "duplicates":
        df = pd.concat([df.iloc[:21], df.iloc[[20]], df.iloc[21:]])
        return df, "duplicates", [_at(clean, 20)]
    if kind == "unsorted":
        order = list(range(len(df)))
        order[30], order[31] = 31, 30
        return df.iloc[order], "unsorted", [_at(clean, 30)]
    if kind == "ohlc_high":
        df.iloc[40, col("high")] = df.iloc[40][["open", "close"]].max() * 0.999
        return df, "ohlc_violations", [_at(clean, 40)]
    if kind == "ohlc_low":
        df.iloc[41, col("low")] = df.iloc[41][["open", "close"]].min() * 1.001
        df.iloc[77, col("low")] = df.iloc[77]["high"] * 1.5
        return df, "ohlc_violations", [_at(clean, 41), _at(clean, 77)]
    if kind == "nan":
        df.iloc[5, col("close")] = np.nan
        df.iloc[6, col("volume")] = np.inf
        return df, "nan_rows", [_at(clean, 5), _at(clean, 6)]
    if kind == "nonpositive":
        for c in ("open", "high", "low", "close"):
            df.iloc[60, col(c)] = 0.0
        return df, "nonpositive_prices", [_at(clean, 60)]
    if kind == "negative_volume":
        df.iloc[99, col("volume")] = -1.0
        return df, "negative_volume", [_at(clean, 99)]
    raise AssertionError(kind)


KINDS = ["duplicates", "unsorted", "ohlc_high", "ohlc_low", "nan", "nonpositive", "negative_volume"]
FIELDS = ["duplicates", "unsorted", "ohlc_violations", "nan_rows", "nonpositive_prices",
          "negative_volume"]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_planted_problem_found_at_its_timestamp_and_nowhere_else(clean, kind):
    df, field, stamps = _plant(clean, kind)
    rep = validate_ohlcv(df, "1h")
    assert list(getattr(rep, field)) == stamps
    for other in FIELDS:
        if other != field:
            assert len(getattr(rep, other)) == 0, other
    assert not rep.ok and rep.gaps == []
    with pytest.raises(DataValidationError) as info:
        check_ohlcv(df, name="planted.csv")
    message = str(info.value)
    assert "\n" not in message and message.startswith("planted.csv: ")
    assert stamps[0].strftime("%Y-%m-%d %H:%M") in message


@pytest.mark.parametrize("kind", KINDS)
def test_the_pandera_schema_rejects_the_same_problems(clean, kind):
    df, _, _ = _plant(clean, kind)
    with pytest.raises(pandera.errors.SchemaError):
        ohlcv_schema().validate(df)


def test_structure_problems(clean):
    naive = clean.tz_localize(None)
    assert any("no timezone" in i for i in validate_ohlcv(naive).issues)
    berlin = clean.tz_convert("Europe/Berlin")
    rep = validate_ohlcv(berlin)
    assert any("Europe/Berlin" in i for i in rep.issues) and rep.gaps == []
    ints = clean.assign(volume=clean["volume"].round().astype("int64"))
    assert any("volume is int64" in i for i in validate_ohlcv(ints).issues)
    no_low = clean.drop(columns="low")
    assert any("missing columns low" in i for i in validate_ohlcv(no_low).issues)
    by_number = clean.reset_index()
    rep = validate_ohlcv(by_number)
    assert not rep.ok and "not timestamps" in rep.issues[0]
    for broken in (naive, berlin, ints, no_low, by_number):
        with pytest.raises(DataValidationError):
            check_ohlcv(broken)
    with pytest.raises(BadInputError, match="DataFrame"):
        validate_ohlcv([1, 2, 3])


def test_off_grid_bar_is_a_warning_with_its_timestamp(clean):
    odd = clean.rename(index={_at(clean, 7): _at(clean, 7) + pd.Timedelta("20min")})
    rep = validate_ohlcv(odd, "1h")
    assert list(rep.off_grid) == [_at(clean, 7) + pd.Timedelta("20min")]
    assert rep.ok and "off the 1h grid" in rep.warnings[0]


@pytest.mark.parametrize("tf", ["1m", "5m", "15m", "1h", "4h", "1d", "1w"])
def test_infer_timeframe_is_robust_to_gaps(tf):
    step = timeframe_to_timedelta(tf)
    idx = pd.date_range("2020-01-02", periods=50, freq=step, tz="UTC")
    idx = idx.delete([3, 4, 5, 20])
    assert infer_timeframe(idx) == tf
    assert infer_timeframe(idx[:1]) is None


def test_explicit_timeframe_overrides_inference(clean):
    rep = validate_ohlcv(clean, "30m")
    assert rep.timeframe == "30m" and rep.missing_bars == 239 and len(rep.gaps) == 239
    assert rep.expected_bars == 479


def test_empty_frame_is_valid_but_has_no_coverage():
    empty = synthetic_ohlcv("BTC/USDT", "1h", "2024-01-01", "2024-01-02").iloc[:0]
    rep = validate_ohlcv(empty)
    assert rep.ok and rep.n_bars == 0 and rep.first is None and rep.summary().startswith("no bars")
