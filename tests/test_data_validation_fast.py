"""The contract check on the hot path: one vectorized pass, agreeing with the full survey
and with the pandera schema on every planted problem, without calling pandera when clean."""

import numpy as np
import pandas as pd
import pandera.errors
import pytest
from test_validate import KINDS, _plant

from cryptoai.data import validate
from cryptoai.data.sources.synthetic import synthetic_ohlcv
from cryptoai.data.validate import check_ohlcv, check_page, contract_holds, ohlcv_schema
from cryptoai.errors import DataValidationError


@pytest.fixture
def clean() -> pd.DataFrame:
    return synthetic_ohlcv("BTC/USDT", "1h", "2024-01-01", "2024-01-11")


def test_a_clean_frame_passes_without_pandera(clean, monkeypatch):
    def no_pandera():
        raise AssertionError("pandera is off the hot path")

    monkeypatch.setattr(validate, "ohlcv_schema", no_pandera)
    assert contract_holds(clean)
    check_ohlcv(clean, timeframe="1h")
    check_ohlcv(clean.iloc[:0])


@pytest.mark.parametrize("kind", KINDS)
def test_the_fast_check_rejects_what_the_schema_rejects(clean, kind):
    df, _, stamps = _plant(clean, kind)
    with pytest.raises(pandera.errors.SchemaError):
        ohlcv_schema().validate(df)
    assert not contract_holds(df)
    with pytest.raises(DataValidationError, match=stamps[0].strftime("%Y-%m-%d %H:%M")):
        check_ohlcv(df)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.assign(high=np.where(d.index == d.index[7], np.inf, d["high"])),
        lambda d: d.assign(volume=d["volume"].astype("float32")),
        lambda d: d.tz_convert("Europe/Paris"),
        lambda d: d.assign(trades=-1.0),
        lambda d: d.drop(columns="close"),
    ],
)
def test_other_breaks_fail_the_fast_check(clean, change):
    assert not contract_holds(change(clean))
    with pytest.raises(DataValidationError):
        check_ohlcv(change(clean))


def test_check_page_sorts_a_page_into_storable_and_refused(clean):
    page = clean.iloc[:10].copy()
    page.iloc[3, page.columns.get_loc("close")] = np.nan
    twin = page.iloc[[5]].copy()
    twin["close"] *= 1.01
    twin["high"] = twin[["high", "close"]].max(axis=1)
    same = page.iloc[[6]]
    page = pd.concat([page, twin, same])
    checked = check_page(page, "1h", page.index[1], page.index[9])
    assert list(checked.bad) == [page.index[3], page.index[5]]
    assert checked.outside == 2
    expected = clean.iloc[[1, 2, 4, 6, 7, 8]]
    pd.testing.assert_frame_equal(checked.clean, expected, check_freq=False)
    assert checked.first_problem().startswith("bar 2024-01-01 03:00: close is missing")


def _arrays(df: pd.DataFrame):
    return (df.index.asi8, *(df[c].to_numpy() for c in ("open", "high", "low", "close", "volume")))


@pytest.mark.parametrize("kind", KINDS)
def test_the_array_check_agrees_with_the_frame_check(clean, kind):
    """ohlcv_values_hold on a frame's arrays is contract_holds on the frame, planted
    problems and clean data alike (the serving path judges arrays, the frame only words it)."""
    from cryptoai.data.validate import ohlcv_values_hold

    assert ohlcv_values_hold(*_arrays(clean))
    df, _, _ = _plant(clean, kind)
    if all(df[c].dtype == np.float64 for c in ("open", "high", "low", "close", "volume")):
        assert ohlcv_values_hold(*_arrays(df)) == contract_holds(df) is False


def test_the_array_check_by_hand():
    from cryptoai.data.validate import ohlcv_values_hold

    t = np.array([0, 1, 2], dtype=np.int64)
    o, h, lo, c, v = (np.array(x, dtype=float) for x in
                      ([2, 2, 2], [3, 3, 3], [1, 1, 1], [2, 2, 2], [0, 5, 1]))  # fmt: skip
    assert ohlcv_values_hold(t, o, h, lo, c, v)
    assert ohlcv_values_hold(t.astype("datetime64[ns]"), o, h, lo, c, v)
    assert ohlcv_values_hold(t[:0], o[:0], h[:0], lo[:0], c[:0], v[:0])
    assert not ohlcv_values_hold(np.array([0, 2, 1]), o, h, lo, c, v)  # order
    assert not ohlcv_values_hold(np.array([0, 1, 1]), o, h, lo, c, v)  # duplicate
    for bad in (
        (o, h, lo, np.array([2, 4, 2.0]), v),  # close above high
        (o, h, np.array([1, 0, 1.0]), c, v),  # low at 0
        (o, np.array([3, np.inf, 3]), lo, c, v),
        (o, h, lo, c, np.array([0, -1, 1.0])),
        (o, h, lo, c, np.array([0, np.nan, 1.0])),
        (np.array([2, np.nan, 2]), h, lo, c, v),
    ):
        assert not ohlcv_values_hold(t, *bad)
