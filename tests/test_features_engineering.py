"""build_features: the frame contract, derived features against pandas formulas, and the
no-lookahead proof for every registered feature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ohlcv_frame

from cryptoai.errors import BadInputError
from cryptoai.features.engineering import build_features
from cryptoai.features.registry import FEATURES, known_features
from cryptoai.features.spec import FeatureSpec, load_feature_spec

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = ROOT / "configs/features/default.yaml"


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    """Realistic candles with taker-buy volumes (the synthetic source), 2,880 hourly bars."""
    return ohlcv_frame(2880, seed=3, start="2022-01-01", extra=True)


def spec_of(*items: dict | str) -> FeatureSpec:
    return FeatureSpec.model_validate({"features": list(items)})


# every registered feature with its defaults, plus the non-default variants
ALL_FEATURES = spec_of(
    *known_features(),
    {"name": "sma", "params": {"window": 7, "relative": True}},
    {"name": "ema", "params": {"window": 9, "relative": True}},
    {"name": "macd", "params": {"fast": 5, "slow": 13, "signal": 4, "relative": True}},
    {"name": "atr", "params": {"window": 5, "relative": True}},
    {"name": "log_returns", "params": {"period": 24}},
    {"name": "returns", "params": {"period": 3}},
)


def test_every_registered_feature_has_no_lookahead(candles):
    """Values on a truncated history equal those on the full history, row for row: nothing at
    bar t depends on a later bar. Truncations straddle warm-ups and kernel resync blocks."""
    assert set(FEATURES) <= {item.name for item in ALL_FEATURES.features}
    full = build_features(candles, ALL_FEATURES)
    for cut in (1, 7, 60, 1023, 1024, 1025, 2049, len(candles) - 1):
        part = build_features(candles.iloc[:cut], ALL_FEATURES)
        expected = full.iloc[:cut]
        assert part.index.equals(expected.index)
        for col in full.columns:
            np.testing.assert_allclose(
                part[col].to_numpy(),
                expected[col].to_numpy(),
                rtol=1e-9,
                atol=0,
                equal_nan=True,
                err_msg=f"{col} at cut {cut}",
            )


def test_default_spec_frame_contract(candles):
    spec = load_feature_spec(DEFAULT_SPEC)
    out = build_features(candles, DEFAULT_SPEC)
    assert out.index.equals(candles.index)
    assert list(out.columns) == spec.columns()
    assert (out.dtypes == "float64").all()
    # every column becomes complete after its warm-up (at most 50 bars) and stays finite
    tail = out.iloc[60:]
    assert np.isfinite(tail.to_numpy()).all()
    assert out.iloc[0].isna().sum() > 0  # some warm-up is NaN, never filled
    for name in ("rsi_14", "ret_log_1", "sma_20_rel", "macd_12_26_9_rel", "atr_14_rel"):
        assert name in out.columns


def test_derived_features_match_pandas_formulas(candles):
    spec = spec_of(
        {"name": "returns", "params": {"period": 3}},
        {"name": "log_returns", "params": {"period": 2}},
        {"name": "volatility", "params": {"window": 10}},
        {"name": "momentum", "params": {"window": 10}},
        {"name": "volume_zscore", "params": {"window": 15}},
        {"name": "amihud", "params": {"window": 5}},
        {"name": "taker_imbalance", "params": {"window": 8}},
        {"name": "sma", "params": {"window": 10, "relative": True}},
        {"name": "atr", "params": {"window": 14, "relative": True}},
    )
    out = build_features(candles, spec)
    c, v, tb = candles["close"], candles["volume"], candles["taker_buy_base"]
    r1 = np.log(c / c.shift(1))
    expected = {
        "ret_3": c / c.shift(3) - 1,
        "ret_log_2": np.log(c / c.shift(2)),
        "volatility_10": r1.rolling(10).std(),
        "mom_10": np.log(c / c.shift(10)) / (r1.rolling(10).std() * np.sqrt(10)),
        "volume_z_15": (v - v.rolling(15).mean()) / v.rolling(15).std(),
        "amihud_5": ((c / c.shift(1) - 1).abs() / (c * v)).rolling(5).mean(),
        "taker_imb_8": ((tb - (v - tb)) / v).rolling(8).mean(),
        "sma_10_rel": c / c.rolling(10).mean() - 1,
    }
    for name, ref in expected.items():
        np.testing.assert_allclose(
            out[name], ref, rtol=1e-8, atol=1e-12, equal_nan=True, err_msg=name
        )
        assert out[name].isna().sum() == ref.isna().sum(), name
    # ATR relative to the close: between the bar's range fraction extremes
    assert (out["atr_14_rel"].dropna() > 0).all()


def test_columns_subset_and_prefix(candles):
    spec = spec_of(
        {"name": "bollinger", "columns": ["bb_pband_20_2"]},
        {"name": "rsi", "params": {"window": 14}, "prefix": "h1_"},
    )
    out = build_features(candles, spec)
    assert list(out.columns) == ["bb_pband_20_2", "h1_rsi_14"]
    full = build_features(candles, spec_of("bollinger", "rsi"))
    np.testing.assert_array_equal(out["h1_rsi_14"], full["rsi_14"])
    np.testing.assert_array_equal(out["bb_pband_20_2"], full["bb_pband_20_2"])


def test_missing_taker_column_is_a_clear_error(candles):
    spec = spec_of("rsi", "taker_imbalance")
    with pytest.raises(BadInputError, match=r"entry 1 \('taker_imbalance'\).*taker_buy_base"):
        build_features(candles.drop(columns=["taker_buy_base"]), spec)


def test_not_a_frame_is_rejected():
    with pytest.raises(BadInputError, match="DataFrame"):
        build_features(pd.Series([1.0, 2.0]), spec_of("rsi"))  # type: ignore[arg-type]


def test_zero_volume_bars_give_nan_liquidity_not_inf(candles):
    frame = candles.iloc[:200].copy()
    frame.iloc[100, frame.columns.get_loc("volume")] = 0.0
    out = build_features(frame, spec_of({"name": "amihud", "params": {"window": 5}}))
    assert np.isnan(out["amihud_5"].iloc[100:105]).all()
    assert np.isfinite(out["amihud_5"].iloc[105:]).all()
    assert np.isfinite(out["amihud_5"].iloc[5:100]).all()
