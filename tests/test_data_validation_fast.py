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
